package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
)

// Read implements featurestore.OnlineStore: one HMGET per (lookup, key), all
// in one pipeline. The command arguments of all lookups share one slice, the
// Redis keys one buffer, and the Values of all rows one slab.
func (s *Store) Read(ctx context.Context, lookups []featurestore.Lookup) error {
	ncmds, nargs, nvals, size := 0, 0, 0, 0
	for i := range lookups {
		l := &lookups[i]
		if l.View == nil {
			return featurestore.Invalid("redis: read: lookup %d has no view", i)
		}
		if err := l.Check(i); err != nil {
			return err
		}
		ncmds += len(l.Keys)
		nargs += len(l.Keys) * (3 + len(l.Features))
		nvals += len(l.Keys) * len(l.Features)
		for _, k := range l.Keys {
			size += s.redisKeyLen(l.View.Name, k)
		}
	}
	if ncmds == 0 {
		return nil
	}

	sc := s.getScratch(nargs, ncmds)
	defer s.putScratch(sc)
	args, keys, cmds := sc.args, sc.keys, sc.cmds
	// The Redis keys are views of one buffer, which is never pooled: a key
	// string must not change once go-redis has seen it.
	buf := make([]byte, 0, size)
	c, a := 0, 0
	for i := range lookups {
		l := &lookups[i]
		n := 3 + len(l.Features)
		for k, key := range l.Keys {
			start := len(buf)
			buf = s.appendKey(buf, l.View.Name, key)
			// buf never grows past its capacity, and its bytes never change.
			keys[c] = unsafe.String(&buf[start], len(buf)-start)
			cmdArgs := args[a : a+n : a+n]
			if k == 0 {
				cmdArgs[0], cmdArgs[2] = "hmget", "_ts"
				for j, f := range l.Features {
					cmdArgs[3+j] = &l.View.Features[f].Name
				}
			} else {
				copy(cmdArgs, args[a-n:a]) // the same command, but for the key
			}
			cmdArgs[1] = &keys[c]
			cmds[c] = goredis.NewRawCmd(ctx, cmdArgs...)
			c, a = c+1, a+n
		}
	}
	if err := s.send(ctx, sc.pipe, cmds); err != nil {
		return fmt.Errorf("redis %s: read: %w", s.addrs, err)
	}

	vals := make([]featurestore.Value, nvals)
	var again []rereadItem
	c = 0
	for i := range lookups {
		l := &lookups[i]
		nf := len(l.Features)
		for k, key := range l.Keys {
			row := &l.Rows[k]
			*row = featurestore.Row{Key: key, Values: vals[:nf:nf]}
			vals = vals[nf:]
			err := decodeRow(cmds[c].(*goredis.RawCmd).Val(), l.View, l.Features, row)
			if err != nil {
				var re replyError
				if !errors.As(err, &re) || !re.transient() {
					return s.readError(l, key, err)
				}
				again = append(again, rereadItem{lookup: i, key: k, cmd: c})
			}
			c++
		}
	}
	if len(again) > 0 {
		return s.reread(ctx, lookups, keys, again)
	}
	return nil
}

// send sends the commands of a read: one alone as it is (a request for one
// entity of one view, the commonest, then costs no pipeline), more in one
// pipeline.
func (s *Store) send(ctx context.Context, pipe goredis.Pipeliner, cmds []goredis.Cmder) error {
	if len(cmds) == 1 {
		return s.client.Process(ctx, cmds[0])
	}
	_ = pipe.BatchProcess(ctx, cmds...)
	_, err := pipe.Exec(ctx)
	return err
}

func (s *Store) readError(l *featurestore.Lookup, key string, err error) error {
	return fmt.Errorf("redis %s: read view %s key %q: %w", s.addrs, l.View.Name, key, err)
}

// readScratch holds what a Read needs only while it runs, kept in a pool for
// the next Read: the arguments of its commands (passed to go-redis as *string
// pointers to the view's feature names and to keys, which spares boxing each
// string in an interface), the keys, the commands and a pipeline.
type readScratch struct {
	args []any
	keys []string
	cmds []goredis.Cmder
	pipe goredis.Pipeliner
}

// maxPooledArgs bounds the scratch a pool keeps, so that one huge Read does
// not pin its memory.
const maxPooledArgs = 1 << 16

func (s *Store) getScratch(nargs, ncmds int) *readScratch {
	sc, _ := s.scratch.Get().(*readScratch)
	if sc == nil {
		sc = &readScratch{pipe: s.client.Pipeline()}
	}
	if cap(sc.args) < nargs {
		sc.args = make([]any, nargs)
	}
	if cap(sc.cmds) < ncmds {
		sc.keys = make([]string, ncmds)
		sc.cmds = make([]goredis.Cmder, ncmds)
	}
	sc.args, sc.keys, sc.cmds = sc.args[:nargs], sc.keys[:ncmds], sc.cmds[:ncmds]
	return sc
}

func (s *Store) putScratch(sc *readScratch) {
	if cap(sc.args) > maxPooledArgs {
		return
	}
	clear(sc.args)
	clear(sc.keys)
	clear(sc.cmds)
	sc.pipe.Discard()
	s.scratch.Put(sc)
}

// rereadItem is a key of a lookup whose raw read was answered by a redirect
// or a transient error, and the index of its command in Read.
type rereadItem struct{ lookup, key, cmd int }

// reread reads keys again through go-redis's HMGET, which follows cluster
// redirects (MOVED, ASK) and retries TRYAGAIN and LOADING, in one pipeline.
// Its replies are put back into RESP to be decoded like Read's.
func (s *Store) reread(ctx context.Context, lookups []featurestore.Lookup, keys []string, items []rereadItem) error {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(items))
	for n, it := range items {
		l := &lookups[it.lookup]
		fields := make([]string, 1+len(l.Features))
		fields[0] = "_ts"
		for j, f := range l.Features {
			fields[1+j] = l.View.Features[f].Name
		}
		cmds[n] = pipe.HMGet(ctx, keys[it.cmd], fields...)
	}
	_, _ = pipe.Exec(ctx)
	var raw []byte
	for n, it := range items {
		l := &lookups[it.lookup]
		key := l.Keys[it.key]
		reply, err := cmds[n].Result()
		if err != nil {
			return s.readError(l, key, err)
		}
		raw = appendRESP(raw[:0], reply)
		if err := decodeRow(raw, l.View, l.Features, &l.Rows[it.key]); err != nil {
			return s.readError(l, key, err)
		}
	}
	return nil
}

// appendRESP appends a go-redis HMGET reply to b in RESP3.
func appendRESP(b []byte, reply []any) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(reply)), 10)
	b = append(b, "\r\n"...)
	for _, v := range reply {
		if v == nil {
			b = append(b, "_\r\n"...)
			continue
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, "\r\n"...)
		b = append(b, s...)
		b = append(b, "\r\n"...)
	}
	return b
}

// replyError is an error reply of Redis.
type replyError string

func (e replyError) Error() string { return string(e) }

// transient reports whether the error is a cluster redirect or a state that
// a retry through go-redis gets past.
func (e replyError) transient() bool {
	for _, p := range []string{"MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"} {
		if len(e) >= len(p) && string(e[:len(p)]) == p {
			return true
		}
	}
	return false
}

// featureError is a stored value that does not decode.
type featureError struct {
	feature string
	err     error
}

func (e *featureError) Error() string { return "feature " + e.feature + ": " + e.err.Error() }
func (e *featureError) Unwrap() error { return e.err }

var errShortReply = errors.New("truncated reply")

// decodeRow decodes the raw RESP reply of "HMGET key _ts features..." into
// row, whose Key is set and whose Values are zero. A reply whose _ts is null
// leaves the row not found.
func decodeRow(raw []byte, v *featurestore.View, features []int, row *featurestore.Row) error {
	if len(raw) == 0 {
		return errShortReply
	}
	switch raw[0] {
	case '-': // simple error
		line, _, err := readLine(raw[1:])
		if err != nil {
			return err
		}
		return replyError(line)
	case '!': // RESP3 blob error
		msg, _, _, err := readBulk(raw)
		if err != nil {
			return err
		}
		return replyError(msg)
	case '*':
	default:
		return fmt.Errorf("unexpected reply %q", clip(raw))
	}
	n, p, err := readInt(raw[1:])
	if err != nil {
		return err
	}
	if n != int64(1+len(features)) {
		return fmt.Errorf("HMGET answered %d values for %d fields", n, 1+len(features))
	}
	ts, ok, p, err := readBulk(p)
	if err != nil || !ok {
		return err
	}
	ns, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(ts), len(ts)), 10, 64)
	if err != nil {
		return fmt.Errorf("field _ts: stored event time %q is not an integer", clip(ts))
	}
	row.Found = true
	row.EventTS = time.Unix(0, ns).UTC()
	for j, f := range features {
		var b []byte
		if b, ok, p, err = readBulk(p); err != nil {
			return err
		}
		if !ok {
			continue
		}
		feat := &v.Features[f]
		val, err := featurestore.DecodeValue(feat.Type, b)
		if err != nil {
			return &featureError{feat.Name, err}
		}
		row.Values[j] = val
	}
	return nil
}

// readBulk reads a bulk string ($n\r\n...\r\n, or !n for a blob error) or a
// null ($-1\r\n in RESP2, _\r\n in RESP3) from the start of p.
func readBulk(p []byte) (val []byte, ok bool, rest []byte, err error) {
	if len(p) == 0 {
		return nil, false, nil, errShortReply
	}
	switch p[0] {
	case '_':
		_, rest, err = readLine(p[1:])
		return nil, false, rest, err
	case '$', '!':
		n, rest, err := readInt(p[1:])
		if err != nil {
			return nil, false, nil, err
		}
		if n == -1 {
			return nil, false, rest, nil
		}
		if n < 0 || int64(len(rest)) < n+2 {
			return nil, false, nil, errShortReply
		}
		if rest[n] != '\r' || rest[n+1] != '\n' {
			return nil, false, nil, fmt.Errorf("malformed bulk string in reply")
		}
		return rest[:n:n], true, rest[n+2:], nil
	}
	return nil, false, nil, fmt.Errorf("unexpected %q in an HMGET reply", clip(p))
}

// readLine returns the bytes of p up to the first CRLF, and what follows it.
func readLine(p []byte) (line, rest []byte, err error) {
	i := bytes.Index(p, []byte("\r\n"))
	if i < 0 {
		return nil, nil, errShortReply
	}
	return p[:i], p[i+2:], nil
}

// readInt reads a decimal integer line.
func readInt(p []byte) (int64, []byte, error) {
	line, rest, err := readLine(p)
	if err != nil {
		return 0, nil, err
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(line), len(line)), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("malformed length %q in reply", clip(line))
	}
	return n, rest, nil
}

// clip shortens bytes quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
