package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/storetest"
	"github.com/mlgate/mlgate/internal/testservers"
)

// openTest connects to the Cassandra named by TEST_CASSANDRA_HOSTS (such as
// 127.0.0.1:19042, which deploy/cassandra.sh serves) in a keyspace of its
// own, dropped at the end. Without a server the test is skipped, or fails
// under CI=true.
func openTest(tb testing.TB) *Store {
	tb.Helper()
	hosts := testservers.Cassandra(tb)
	keyspace := fmt.Sprintf("mlgate_test_%d_%06d", time.Now().Unix(), rand.IntN(1e6))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := New(ctx, Options{
		Hosts:    hosts,
		Keyspace: keyspace,
		Timeout:  30 * time.Second, // schema changes on a busy test node
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		defer s.Close()
		if err := s.DropKeyspace(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	s := openTest(t)
	storetest.Run(t, func(t *testing.T) featurestore.OnlineStore { return s })
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no hosts"},
		{Options{Hosts: []string{"127.0.0.1:1"}, Consistency: "MOSTLY"}, `"MOSTLY"`},
		{Options{Hosts: []string{"127.0.0.1:1"}, Keyspace: "Bad-Name"}, `"Bad-Name"`},
		{Options{Hosts: []string{"127.0.0.1:1"}, ReplicationFactor: -1}, "replication factor"},
	} {
		_, err := New(ctx, tt.o)
		if !errors.Is(err, featurestore.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an invalid error naming %s", tt.o, err, tt.want)
		}
	}
	// Nothing listens on port 1: the error names the host.
	_, err := New(ctx, Options{Hosts: []string{"127.0.0.1:1"}, ConnectTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("New on a closed port = %v, want an error naming the host", err)
	}
}

func TestTableName(t *testing.T) {
	if got, _ := tableName("users"); got != "fv_users" {
		t.Errorf("tableName(users) = %s", got)
	}
	long := strings.Repeat("a", 64)
	a, _ := tableName(long)
	b, _ := tableName(long[:63] + "b")
	if len(a) != maxName || len(b) != maxName || a == b {
		t.Errorf("long names give %s and %s", a, b)
	}
	if _, err := tableName(`x"; DROP KEYSPACE mlgate; --`); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("a name with quotes gave %v", err)
	}
}

func TestFloatListCodec(t *testing.T) {
	for _, l := range [][]float32{nil, {}, {1.5, -2, 0}} {
		info := gocql.CollectionType{NativeType: gocql.NewNativeType(4, gocql.TypeList, ""), Elem: gocql.NewNativeType(4, gocql.TypeFloat, "")}
		b, err := floatList(l).MarshalCQL(info)
		if err != nil || b == nil {
			t.Fatalf("marshal %v: %v %v", l, b, err)
		}
		got, err := decodeFloatList(4, b)
		if err != nil || got == nil || len(got) != len(l) {
			t.Fatalf("decode %v: %v %v", l, got, err)
		}
		for i := range l {
			if got[i] != l[i] {
				t.Errorf("decode %v: %v", l, got)
			}
		}
	}
	if _, err := decodeFloatList(4, []byte{0, 0, 0, 2, 0, 0, 0, 4, 1, 2, 3, 4}); err == nil {
		t.Error("a truncated list decoded")
	}
}

// TestSchemaConflict: a feature removed and added again with another type
// is refused, as Cassandra refuses to add back a dropped column retyped.
func TestSchemaConflict(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	v := &featurestore.View{Name: "conflict", Entities: []string{"id"}, Features: []featurestore.Feature{
		{Name: "a", Type: featurestore.Float}, {Name: "b", Type: featurestore.Int},
	}}
	if err := s.Prepare(ctx, v); err != nil {
		t.Fatal(err)
	}
	defer s.Drop(ctx, v)
	// Preparing again is a no-op.
	if err := s.Prepare(ctx, v); err != nil {
		t.Fatal(err)
	}
	old := featurestore.Row{Key: "k", EventTS: time.UnixMilli(1000).UTC(), Values: []featurestore.Value{
		{Type: featurestore.Float, Num: 1.5}, {Type: featurestore.Int, Int: 7},
	}}
	if err := s.Write(ctx, v, []featurestore.Row{old}); err != nil {
		t.Fatal(err)
	}
	shrunk := *v
	shrunk.Features = v.Features[1:]
	if err := s.Prepare(ctx, &shrunk); err != nil {
		t.Fatal(err)
	}
	retyped := *v
	retyped.Features = []featurestore.Feature{{Name: "a", Type: featurestore.String}, v.Features[1]}
	if err := s.Prepare(ctx, &retyped); !errors.Is(err, featurestore.ErrConflict) {
		t.Errorf("re-adding a dropped feature with another type gave %v, want a conflict", err)
	}
	// Added back with its type, it holds none of its old values.
	if err := s.Prepare(ctx, v); err != nil {
		t.Fatal(err)
	}
	l := []featurestore.Lookup{{View: v, Keys: []string{"k"}, Features: []int{0, 1}, Rows: make([]featurestore.Row, 1)}}
	if err := s.Read(ctx, l); err != nil {
		t.Fatal(err)
	}
	if r := l[0].Rows[0]; !r.Found || r.Values[0].Present() || r.Values[1].Int != 7 {
		t.Errorf("after dropping and adding back feature a, read %+v, want a absent and b 7", r)
	}

	bad := &featurestore.View{Name: "reserved", Entities: []string{"id"}, Features: []featurestore.Feature{{Name: "event_ts", Type: featurestore.Int}}}
	if err := s.Prepare(ctx, bad); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("a feature named event_ts gave %v", err)
	}
	// CQL keywords are fine as feature names.
	kw := &featurestore.View{Name: "keywords", Entities: []string{"id"}, Features: []featurestore.Feature{
		{Name: "limit", Type: featurestore.Double}, {Name: "order", Type: featurestore.String}, {Name: "from", Type: featurestore.Bool},
	}}
	if err := s.Prepare(ctx, kw); err != nil {
		t.Fatal(err)
	}
	defer s.Drop(ctx, kw)
	row := featurestore.Row{Key: "k", EventTS: time.UnixMilli(1234567).UTC(), Values: []featurestore.Value{
		{Type: featurestore.Double, Num: 2.5}, {Type: featurestore.String, Str: "o"}, {Type: featurestore.Bool, Int: 1},
	}}
	if err := s.Write(ctx, kw, []featurestore.Row{row}); err != nil {
		t.Fatal(err)
	}
	got := []featurestore.Lookup{{View: kw, Keys: []string{"k", ""}, Features: []int{2, 0, 1}, Rows: make([]featurestore.Row, 2)}}
	if err := s.Read(ctx, got); err != nil {
		t.Fatal(err)
	}
	r := got[0].Rows
	if !r[0].Found || !r[0].EventTS.Equal(row.EventTS) || r[0].Values[0].Int != 1 || r[0].Values[1].Num != 2.5 || r[0].Values[2].Str != "o" || r[1].Found || len(r[1].Values) != 3 {
		t.Errorf("read %+v", r)
	}
}

// TestWholeRowReplaced: a later row's absent values delete the older ones.
func TestWholeRowReplaced(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	v := &featurestore.View{Name: "replace", Entities: []string{"id"}, Features: []featurestore.Feature{
		{Name: "a", Type: featurestore.String}, {Name: "b", Type: featurestore.FloatList},
	}}
	if err := s.Prepare(ctx, v); err != nil {
		t.Fatal(err)
	}
	defer s.Drop(ctx, v)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := featurestore.Row{Key: "k", EventTS: t0, Values: []featurestore.Value{
		{Type: featurestore.String, Str: "x"}, {Type: featurestore.FloatList, List: []float32{1}},
	}}
	sparse := featurestore.Row{Key: "k", EventTS: t0.Add(time.Millisecond), Values: []featurestore.Value{
		{}, {Type: featurestore.FloatList}, // a nil list that is present is an empty list
	}}
	empty := featurestore.Row{Key: "k", EventTS: t0.Add(2 * time.Millisecond), Values: make([]featurestore.Value, 2)}
	read := func() featurestore.Row {
		t.Helper()
		l := []featurestore.Lookup{{View: v, Keys: []string{"k"}, Features: []int{0, 1}, Rows: make([]featurestore.Row, 1)}}
		if err := s.Read(ctx, l); err != nil {
			t.Fatal(err)
		}
		return l[0].Rows[0]
	}
	for _, rows := range [][]featurestore.Row{{full}, {sparse}, {full}} {
		if err := s.Write(ctx, v, rows); err != nil {
			t.Fatal(err)
		}
	}
	if r := read(); !r.Found || !r.EventTS.Equal(sparse.EventTS) || r.Values[0].Present() || r.Values[1].List == nil || len(r.Values[1].List) != 0 {
		t.Errorf("read %+v, want the sparse row", r)
	}
	// A row of absent values keeps its event time: it is found.
	if err := s.Write(ctx, v, []featurestore.Row{empty}); err != nil {
		t.Fatal(err)
	}
	if r := read(); !r.Found || !r.EventTS.Equal(empty.EventTS) || r.Values[0].Present() || r.Values[1].Present() {
		t.Errorf("read %+v, want the empty row", r)
	}
}

func benchView(s *Store, b *testing.B, entities, features int) featurestore.Lookup {
	types := []featurestore.Type{featurestore.Float, featurestore.Double, featurestore.Int, featurestore.String, featurestore.Bool, featurestore.FloatList}
	v := &featurestore.View{Name: fmt.Sprintf("bench_%d_%d", entities, features), Entities: []string{"id"}}
	for i := range features {
		v.Features = append(v.Features, featurestore.Feature{Name: fmt.Sprintf("f%d", i), Type: types[i%len(types)]})
	}
	ctx := context.Background()
	if err := s.Prepare(ctx, v); err != nil {
		b.Fatal(err)
	}
	rows := make([]featurestore.Row, entities)
	keys := make([]string, entities)
	for e := range rows {
		keys[e] = fmt.Sprintf("entity-%d", e)
		rows[e] = featurestore.Row{Key: keys[e], EventTS: time.Now(), Values: make([]featurestore.Value, features)}
		for i, f := range v.Features {
			val := featurestore.Value{Type: f.Type, Num: float64(i) / 4, Int: int64(i % 2), Str: fmt.Sprint("value-", e, "-", i)}
			if f.Type == featurestore.FloatList {
				val.List = make([]float32, 16)
			}
			rows[e].Values[i] = val
		}
	}
	if err := s.Write(ctx, v, rows); err != nil {
		b.Fatal(err)
	}
	idx := make([]int, features)
	for i := range idx {
		idx[i] = i
	}
	return featurestore.Lookup{View: v, Keys: keys, Features: idx, Rows: make([]featurestore.Row, entities)}
}

func benchRead(b *testing.B, entities, features int) {
	s := openTest(b)
	l := []featurestore.Lookup{benchView(s, b, entities, features)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Read(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, r := range l[0].Rows {
		if !r.Found {
			b.Fatalf("row %s not found", r.Key)
		}
	}
}

func BenchmarkRead_Entities100_Features50(b *testing.B) { benchRead(b, 100, 50) }
func BenchmarkRead_Entities1_Features10(b *testing.B)   { benchRead(b, 1, 10) }
