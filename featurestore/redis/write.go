package redis

import (
	"context"
	"fmt"
	"strconv"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
)

// writeScriptSrc writes one row. KEYS[1] is the row's hash; ARGV[1] its event
// time (decimal int64 Unix nanoseconds); ARGV[2..] pairs of feature name and
// encoded value, for the present values only. It returns 1 when it wrote the
// row, 0 when the stored row is later.
//
// Times are compared as (seconds-ish high part, low 9 digits), both exact in a
// Lua double: the whole int64 is not (doubles hold 53 bits), and two times a
// few hundred nanoseconds apart would compare equal. A stored _ts that is not
// a decimal integer counts as absent: the row is replaced.
const writeScriptSrc = `
local function split(s)
  if not s or #s == 0 or #s > 20 then return nil end
  local neg = string.byte(s, 1) == 45
  local d = s
  if neg then d = string.sub(s, 2) end
  if #d == 0 or #d > 19 or string.find(d, '%D') then return nil end
  local hi = tonumber(string.sub(d, 1, -10)) or 0
  local lo = tonumber(string.sub(d, -9))
  if neg then return -hi, -lo end
  return hi, lo
end
local oh, ol = split(redis.call('HGET', KEYS[1], '_ts'))
if oh then
  local nh, nl = split(ARGV[1])
  if nh and (oh > nh or (oh == nh and ol > nl)) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_ts', unpack(ARGV))
return 1
`

var writeScript = goredis.NewScript(writeScriptSrc)

// Limits of one pipeline of Write: rows, and bytes of keys and values (a soft
// limit: a chunk ends after the row that passes it).
const (
	writeChunkRows  = 1000
	writeChunkBytes = 8 << 20
)

// Write implements featurestore.OnlineStore. See the package doc for the
// rules; rows are checked before anything is sent.
func (s *Store) Write(ctx context.Context, v *featurestore.View, rows []featurestore.Row) error {
	if v == nil {
		return featurestore.Invalid("redis: write: no view")
	}
	for i := range rows {
		r := &rows[i]
		if len(r.Values) != len(v.Features) {
			return featurestore.Invalid("view %s: row %d (key %q) has %d values, want %d, one per feature", v.Name, i, r.Key, len(r.Values), len(v.Features))
		}
		for j, val := range r.Values {
			if val.Present() && val.Type != v.Features[j].Type {
				return featurestore.Invalid("view %s: row %d (key %q): feature %s is %s, got a %s value", v.Name, i, r.Key, v.Features[j].Name, v.Features[j].Type, val.Type)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < writeChunkRows && size < writeChunkBytes {
			size += rowSize(s, v, &rows[n])
			n++
		}
		if err := s.writeChunk(ctx, v, rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// rowSize is the number of bytes writeChunk puts in its buffer for a row.
func rowSize(s *Store, v *featurestore.View, r *featurestore.Row) int {
	n := s.redisKeyLen(v.Name, r.Key) + 20 // key, then _ts in decimal
	for _, val := range r.Values {
		switch val.Type {
		case "":
		case featurestore.String:
			n += len(val.Str)
		case featurestore.FloatList:
			n += 4 * len(val.List)
		default:
			n += 8
		}
	}
	return n
}

// writeChunk runs the write script for each row, in one pipeline. The keys,
// times and values of all rows are laid out in one buffer and passed to
// go-redis as *string views of it, which spares an allocation per argument.
func (s *Store) writeChunk(ctx context.Context, v *featurestore.View, rows []featurestore.Row) error {
	nargs, nstrs, size := 0, 0, 0
	for i := range rows {
		present := 0
		for _, val := range rows[i].Values {
			if val.Present() {
				present++
			}
		}
		nargs += 5 + 2*present // evalsha sha 1 key ts, then name, value pairs
		nstrs += 2 + present   // key, ts, values
		size += rowSize(s, v, &rows[i])
	}
	args := make([]any, nargs)
	strs := make([]string, nstrs)
	buf := make([]byte, 0, size)
	cmds := make([]goredis.Cmder, len(rows))
	sha := writeScript.Hash()

	// view returns the bytes appended to buf since start as a string. buf
	// only grows, so the bytes never change.
	view := func(start int) string {
		if start == len(buf) {
			return ""
		}
		return unsafe.String(&buf[start], len(buf)-start)
	}
	a, st := 0, 0
	for i := range rows {
		r := &rows[i]
		first := a
		args[a], args[a+1], args[a+2] = "evalsha", &sha, "1"
		start := len(buf)
		buf = s.appendKey(buf, v.Name, r.Key)
		strs[st] = view(start)
		args[a+3] = &strs[st]
		start = len(buf)
		buf = strconv.AppendInt(buf, r.EventTS.UnixNano(), 10)
		strs[st+1] = view(start)
		args[a+4] = &strs[st+1]
		a, st = a+5, st+2
		for j, val := range r.Values {
			if !val.Present() {
				continue
			}
			start = len(buf)
			buf = featurestore.AppendValue(buf, val)
			strs[st] = view(start)
			args[a], args[a+1] = &v.Features[j].Name, &strs[st]
			a, st = a+2, st+1
		}
		cmds[i] = goredis.NewCmd(ctx, args[first:a:a]...)
	}

	// A server that lost the script (restart, SCRIPT FLUSH, failover) answers
	// NOSCRIPT without running it: load it and send those rows again.
	keys := make([]string, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key
	}
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		_ = pipe.BatchProcess(ctx, cmds...)
		_, _ = pipe.Exec(ctx)
		var retry []goredis.Cmder
		var retryKeys []string
		for i, c := range cmds {
			err := c.Err()
			if err == nil {
				continue
			}
			if isNoScript(err) && attempt < 3 {
				retry = append(retry, goredis.NewCmd(ctx, c.Args()...))
				retryKeys = append(retryKeys, keys[i])
				continue
			}
			return fmt.Errorf("redis %s: write view %s key %q: %w", s.addrs, v.Name, keys[i], err)
		}
		if len(retry) == 0 {
			return nil
		}
		if err := writeScript.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("redis %s: load the write script: %w", s.addrs, err)
		}
		cmds, keys = retry, retryKeys
	}
}
