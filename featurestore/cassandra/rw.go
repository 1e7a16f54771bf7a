package cassandra

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/mlgate/mlgate/featurestore"
)

// Write implements featurestore.OnlineStore: one INSERT per row, USING
// TIMESTAMP its event time in microseconds, up to 64 at a time (see the
// package documentation). On an error some rows may be written, which
// writing them all again mends.
func (s *Store) Write(ctx context.Context, v *featurestore.View, rows []featurestore.Row) error {
	table, err := checkView(v)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := checkRow(v, r); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return ctx.Err()
	}

	// INSERT INTO "ks"."fv_view" ("entity_key","event_ts","f1",...)
	// VALUES (?,?,?,...) USING TIMESTAMP ?
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.qualified(table))
	b.WriteString(` ("` + keyColumn + `","` + tsColumn + `"`)
	for _, f := range v.Features {
		b.WriteString(`,"`)
		b.WriteString(f.Name)
		b.WriteString(`"`)
	}
	b.WriteString(") VALUES (?,?")
	b.WriteString(strings.Repeat(",?", len(v.Features)))
	b.WriteString(") USING TIMESTAMP ?") // a bind marker, of type bigint
	stmt := b.String()

	// Each worker reuses its own arguments.
	args := make([][]any, min(len(rows), maxWrites))
	return forEach(ctx, len(rows), maxWrites, func(ctx context.Context, w, i int) error {
		a := args[w]
		if a == nil {
			a = make([]any, len(v.Features)+3)
			args[w] = a
		}
		r := rows[i]
		a[0] = r.Key
		a[1] = r.EventTS.UnixMilli() // the timestamp column, in milliseconds
		for j, val := range r.Values {
			a[2+j] = bindValue(val)
		}
		a[len(a)-1] = r.EventTS.UnixMicro() // the write timestamp, in microseconds
		q := s.query(ctx, stmt, a...)
		err := q.Exec()
		q.Release()
		if err != nil {
			return fmt.Errorf("cassandra: write view %s key %q: %w", v.Name, r.Key, err)
		}
		return nil
	})
}

// query returns an idempotent query of the session bound to ctx, to
// Release after use. (gocql's WithContext copies the query: the original
// goes back to gocql's pool at once.)
func (s *Store) query(ctx context.Context, stmt string, args ...any) *gocql.Query {
	q := s.session.Query(stmt, args...)
	qc := q.WithContext(ctx).Idempotent(true)
	q.Release()
	return qc
}

// checkRow checks a row against its view before anything is sent.
func checkRow(v *featurestore.View, r featurestore.Row) error {
	if r.Key == "" {
		return featurestore.Invalid("cassandra: view %s: a row has an empty key", v.Name)
	}
	if len(r.Values) != len(v.Features) {
		return featurestore.Invalid("cassandra: view %s key %q: %d values for %d features", v.Name, r.Key, len(r.Values), len(v.Features))
	}
	for j, val := range r.Values {
		if val.Present() && val.Type != v.Features[j].Type {
			return featurestore.Invalid("cassandra: view %s key %q: feature %s is %s, got a %s value",
				v.Name, r.Key, v.Features[j].Name, v.Features[j].Type, val.Type)
		}
	}
	return nil
}

// bindValue is the query argument of a value: nil (null) when absent.
func bindValue(val featurestore.Value) any {
	switch val.Type {
	case featurestore.Float:
		return float32(val.Num)
	case featurestore.Double:
		return val.Num
	case featurestore.Int:
		return val.Int
	case featurestore.Bool:
		return val.Int&1 != 0 // as featurestore.AppendValue
	case featurestore.String:
		return val.Str
	case featurestore.FloatList:
		return floatList(val.List)
	}
	return nil
}

// floatList marshals a float_list value, never as null: a present empty (or
// nil) list is stored as an empty list.
type floatList []float32

// MarshalCQL implements gocql.Marshaler, without the reflection gocql spends
// on each element of a slice.
func (l floatList) MarshalCQL(info gocql.TypeInfo) ([]byte, error) {
	size := sizeLen(info)
	b := make([]byte, 0, size+len(l)*(size+4))
	b = appendSize(b, size, len(l))
	for _, f := range l {
		b = appendSize(b, size, 4)
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b, nil
}

// sizeLen is the width of the counts and lengths inside a collection: 4
// bytes since protocol version 3, 2 before.
func sizeLen(info gocql.TypeInfo) int {
	if info.Version() < 3 {
		return 2
	}
	return 4
}

func appendSize(b []byte, size, n int) []byte {
	if size == 2 {
		return binary.BigEndian.AppendUint16(b, uint16(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func readSize(b []byte, size int) int {
	if size == 2 {
		return int(binary.BigEndian.Uint16(b))
	}
	return int(int32(binary.BigEndian.Uint32(b)))
}

// readPlan is the statement and the scan targets of one lookup.
type readPlan struct {
	l     *featurestore.Lookup
	stmt  string
	start int // index of the lookup's first key among all keys of the Read
	// vals holds the Values of every row of the lookup, n per key.
	vals []featurestore.Value
	// dest holds the scan targets of every row, 1+n per key.
	dest []any
}

// Read implements featurestore.OnlineStore: one prepared single-partition
// SELECT per key, every key of every lookup in one concurrent batch of up
// to 128 queries in flight.
func (s *Store) Read(ctx context.Context, lookups []featurestore.Lookup) error {
	plans := make([]readPlan, len(lookups))
	total := 0
	for li := range lookups {
		l := &lookups[li]
		stmt, err := s.selectStmt(l)
		if err != nil {
			return err
		}
		n := len(l.Features)
		plans[li] = readPlan{
			l:     l,
			stmt:  stmt,
			start: total,
			vals:  make([]featurestore.Value, len(l.Keys)*n),
			dest:  make([]any, len(l.Keys)*(1+n)),
		}
		total += len(l.Keys)
	}
	if total == 0 {
		return ctx.Err()
	}
	return forEach(ctx, total, maxReads, func(ctx context.Context, _, i int) error {
		p := &plans[0]
		if len(plans) > 1 {
			li := sort.Search(len(plans), func(li int) bool { return plans[li].start > i }) - 1
			p = &plans[li]
		}
		return s.readRow(ctx, p, i-p.start)
	})
}

// selectStmt checks a lookup and returns its statement:
// SELECT "event_ts","f1",... FROM "ks"."fv_view" WHERE "entity_key"=?
func (s *Store) selectStmt(l *featurestore.Lookup) (string, error) {
	if l.View == nil {
		return "", featurestore.Invalid("cassandra: a lookup has no view")
	}
	table, err := tableName(l.View.Name)
	if err != nil {
		return "", err
	}
	if len(l.Rows) != len(l.Keys) {
		return "", featurestore.Invalid("cassandra: lookup of view %s has %d rows for %d keys", l.View.Name, len(l.Rows), len(l.Keys))
	}
	var b strings.Builder
	b.Grow(64 + len(table) + len(s.keyspace) + 24*len(l.Features))
	b.WriteString(`SELECT "` + tsColumn + `"`)
	for _, f := range l.Features {
		if f < 0 || f >= len(l.View.Features) {
			return "", featurestore.Invalid("cassandra: lookup of view %s: feature index %d out of range", l.View.Name, f)
		}
		name := l.View.Features[f].Name
		if !validIdent(name) {
			return "", featurestore.Invalid("cassandra: view %s: feature name %q is not a valid name", l.View.Name, name)
		}
		b.WriteString(`,"`)
		b.WriteString(name)
		b.WriteString(`"`)
	}
	b.WriteString(" FROM ")
	b.WriteString(s.qualified(table))
	b.WriteString(` WHERE "` + keyColumn + `"=?`)
	return b.String(), nil
}

// readRow reads the k-th key of a lookup into its row.
func (s *Store) readRow(ctx context.Context, p *readPlan, k int) error {
	l := p.l
	n := len(l.Features)
	key := l.Keys[k]
	vals := p.vals[k*n : (k+1)*n : (k+1)*n]
	l.Rows[k] = featurestore.Row{Key: key, Values: vals}
	if key == "" { // Cassandra has no row with an empty key
		return nil
	}
	row := &l.Rows[k]
	dest := p.dest[k*(1+n) : (k+1)*(1+n)]
	dest[0] = (*tsCell)(row)
	for j, f := range l.Features {
		// The cell decodes the type it holds, or empties itself on null.
		vals[j].Type = l.View.Features[f].Type
		dest[1+j] = (*valueCell)(&vals[j])
	}

	q := s.query(ctx, p.stmt, key)
	iter := q.Iter()
	scanned := iter.Scan(dest...)
	err := iter.Close()
	q.Release()
	if err != nil {
		clear(vals)
		*row = featurestore.Row{Key: key, Values: vals}
		return fmt.Errorf("cassandra: read view %s key %q: %w", l.View.Name, key, err)
	}
	if !scanned {
		clear(vals)
		return nil
	}
	// A row whose selected columns are all null reads as not found; the
	// event_ts cell set Found when it held a time.
	for j := 0; j < n && !row.Found; j++ {
		row.Found = vals[j].Present()
	}
	return nil
}

// tsCell decodes the event_ts column into a row.
type tsCell featurestore.Row

// UnmarshalCQL implements gocql.Unmarshaler.
func (c *tsCell) UnmarshalCQL(info gocql.TypeInfo, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if info.Type() != gocql.TypeTimestamp || len(data) != 8 {
		return fmt.Errorf("column %s: got %d bytes of %s, want a timestamp", tsColumn, len(data), info)
	}
	c.EventTS = time.UnixMilli(int64(binary.BigEndian.Uint64(data))).UTC()
	c.Found = true
	return nil
}

// valueCell decodes a feature column into a Value whose Type says what it
// should hold; a null leaves the Value absent.
type valueCell featurestore.Value

// UnmarshalCQL implements gocql.Unmarshaler.
func (c *valueCell) UnmarshalCQL(info gocql.TypeInfo, data []byte) error {
	t := c.Type
	if data == nil || len(data) == 0 && t != featurestore.String && t != featurestore.FloatList {
		*c = valueCell{}
		return nil
	}
	got := info.Type()
	ok := false
	switch t {
	case featurestore.Float:
		if ok = got == gocql.TypeFloat && len(data) == 4; ok {
			c.Num = float64(math.Float32frombits(binary.BigEndian.Uint32(data)))
		}
	case featurestore.Double:
		if ok = got == gocql.TypeDouble && len(data) == 8; ok {
			c.Num = math.Float64frombits(binary.BigEndian.Uint64(data))
		}
	case featurestore.Int:
		if ok = got == gocql.TypeBigInt && len(data) == 8; ok {
			c.Int = int64(binary.BigEndian.Uint64(data))
		}
	case featurestore.Bool:
		if ok = got == gocql.TypeBoolean && len(data) == 1; ok {
			c.Int = 0
			if data[0] != 0 {
				c.Int = 1
			}
		}
	case featurestore.String:
		if ok = got == gocql.TypeVarchar || got == gocql.TypeText || got == gocql.TypeAscii; ok {
			c.Str = string(data)
		}
	case featurestore.FloatList:
		if ct, isList := info.(gocql.CollectionType); isList && got == gocql.TypeList && ct.Elem != nil && ct.Elem.Type() == gocql.TypeFloat {
			var err error
			if c.List, err = decodeFloatList(sizeLen(info), data); err != nil {
				return err
			}
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("got %d bytes of %s, want a %s feature", len(data), info, t)
	}
	return nil
}

// decodeFloatList decodes a list<float>: a count, then each element's length
// and value.
func decodeFloatList(size int, data []byte) ([]float32, error) {
	if len(data) < size {
		return nil, fmt.Errorf("float_list of %d bytes is truncated", len(data))
	}
	n := readSize(data, size)
	data = data[size:]
	if n < 0 || n*(size+4) != len(data) {
		return nil, fmt.Errorf("float_list of %d elements has %d bytes of elements", n, len(data))
	}
	list := make([]float32, n)
	for i := range list {
		if l := readSize(data, size); l != 4 {
			return nil, fmt.Errorf("float_list element %d has %d bytes, want 4", i, l)
		}
		list[i] = math.Float32frombits(binary.BigEndian.Uint32(data[size:]))
		data = data[size+4:]
	}
	return list, nil
}
