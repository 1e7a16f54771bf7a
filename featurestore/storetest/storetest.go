// Package storetest holds the conformance suites of the feature store's
// backends, run by each backend's tests against a real server (the embedded
// store against a real file): Run for every featurestore.OnlineStore, and
// TestViewStore for every featurestore.ViewStore (featurestore/embedded and
// featurestore/postgres).
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
)

// Run runs the suite. open returns the store under test; each subtest uses
// views with fresh names, so the store may be shared and hold other data.
func Run(t *testing.T, open func(t *testing.T) featurestore.OnlineStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s featurestore.OnlineStore)
	}{
		{"RoundTripEveryType", testRoundTrip},
		{"MissingKeys", testMissing},
		{"FeatureSubsetAndOrder", testSubset},
		{"OlderRowsDoNotOverwrite", testEventTime},
		{"RewriteIsIdempotent", testIdempotent},
		{"SeveralViewsInOneRead", testSeveralViews},
		{"CompositeKeys", testCompositeKeys},
		{"AddAndRemoveFeatures", testSchemaChange},
		{"Drop", testDrop},
		{"ManyKeys", testManyKeys},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tt.fn(t, s)
		})
	}
}

// newView prepares a view with fresh name holding one feature of each type.
func newView(t *testing.T, s featurestore.OnlineStore, entities ...string) *featurestore.View {
	t.Helper()
	if len(entities) == 0 {
		entities = []string{"user_id"}
	}
	v := &featurestore.View{
		Name:     fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6)),
		Entities: entities,
		Features: []featurestore.Feature{
			{Name: "age", Type: featurestore.Float},
			{Name: "income", Type: featurestore.Double},
			{Name: "visits", Type: featurestore.Int},
			{Name: "city", Type: featurestore.String},
			{Name: "vip", Type: featurestore.Bool},
			{Name: "embedding", Type: featurestore.FloatList},
		},
	}
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
	prepare(t, s, v)
	t.Cleanup(func() { s.Drop(context.Background(), v) })
	return v
}

func prepare(t *testing.T, s featurestore.OnlineStore, v *featurestore.View) {
	t.Helper()
	if err := s.Prepare(context.Background(), v); err != nil {
		t.Fatalf("Prepare %s: %v", v.Name, err)
	}
}

// at is a fixed event time, truncated to the millisecond, which every store
// keeps exactly.
func at(minutes int) time.Time {
	return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute)
}

func row(key string, ts time.Time, age float32, city string) featurestore.Row {
	return featurestore.Row{Key: key, EventTS: ts, Values: []featurestore.Value{
		{Type: featurestore.Float, Num: float64(age)},
		{Type: featurestore.Double, Num: float64(age) * 1000.5},
		{Type: featurestore.Int, Int: int64(age) * -3},
		{Type: featurestore.String, Str: city},
		{Type: featurestore.Bool, Int: int64(len(city) % 2)},
		{Type: featurestore.FloatList, List: []float32{age, -age, 0.5}},
	}}
}

func all(v *featurestore.View) []int {
	idx := make([]int, len(v.Features))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func write(t *testing.T, s featurestore.OnlineStore, v *featurestore.View, rows ...featurestore.Row) {
	t.Helper()
	if err := s.Write(context.Background(), v, rows); err != nil {
		t.Fatalf("Write %s: %v", v.Name, err)
	}
}

func read(t *testing.T, s featurestore.OnlineStore, v *featurestore.View, features []int, keys ...string) []featurestore.Row {
	t.Helper()
	l := []featurestore.Lookup{{View: v, Keys: keys, Features: features, Rows: make([]featurestore.Row, len(keys))}}
	if err := s.Read(context.Background(), l); err != nil {
		t.Fatalf("Read %s: %v", v.Name, err)
	}
	return l[0].Rows
}

// same compares a read row with the written one.
func same(t *testing.T, got, want featurestore.Row) {
	t.Helper()
	want.Found = true
	if !got.Found || got.Key != want.Key || !got.EventTS.Equal(want.EventTS) || !reflect.DeepEqual(got.Values, want.Values) {
		t.Errorf("read\n %+v\nwant\n %+v", got, want)
	}
}

func testRoundTrip(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	rows := []featurestore.Row{row("u1", at(0), 31.5, "Paris"), row("u2", at(1), -2.25, ""), row("ü/ key:3", at(2), 0, "東京")}
	rows[1].Values[5].List = []float32{}
	write(t, s, v, rows...)
	got := read(t, s, v, all(v), "u1", "u2", "ü/ key:3")
	for i := range rows {
		same(t, got[i], rows[i])
	}
}

func testMissing(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	r := row("u1", at(0), 1, "x")
	r.Values[1] = featurestore.Value{} // an absent value stays absent
	r.Values[5] = featurestore.Value{}
	write(t, s, v, r)
	got := read(t, s, v, all(v), "nobody", "u1", "nobody-else")
	if got[0].Found || got[2].Found {
		t.Errorf("unknown keys read as found: %+v %+v", got[0], got[2])
	}
	same(t, got[1], r)
}

func testSubset(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	r := row("u1", at(0), 7, "Lyon")
	write(t, s, v, r)
	got := read(t, s, v, []int{3, 0}, "u1")
	want := featurestore.Row{Key: "u1", EventTS: at(0), Values: []featurestore.Value{r.Values[3], r.Values[0]}}
	same(t, got[0], want)
}

func testEventTime(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	write(t, s, v, row("u1", at(10), 10, "new"))
	write(t, s, v, row("u1", at(5), 5, "old")) // older: ignored
	same(t, read(t, s, v, all(v), "u1")[0], row("u1", at(10), 10, "new"))
	write(t, s, v, row("u1", at(20), 20, "newer"))
	same(t, read(t, s, v, all(v), "u1")[0], row("u1", at(20), 20, "newer"))
	// In one batch, the order of rows does not matter: the latest wins.
	write(t, s, v, row("u2", at(30), 30, "late"), row("u2", at(25), 25, "early"))
	same(t, read(t, s, v, all(v), "u2")[0], row("u2", at(30), 30, "late"))
}

func testIdempotent(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	rows := []featurestore.Row{row("a", at(1), 1, "x"), row("b", at(2), 2, "y")}
	write(t, s, v, rows...)
	write(t, s, v, rows...)
	got := read(t, s, v, all(v), "a", "b")
	same(t, got[0], rows[0])
	same(t, got[1], rows[1])
}

func testSeveralViews(t *testing.T, s featurestore.OnlineStore) {
	v1, v2 := newView(t, s), newView(t, s)
	write(t, s, v1, row("u1", at(1), 1, "one"))
	write(t, s, v2, row("u1", at(2), 2, "two"), row("u9", at(3), 9, "nine"))
	lookups := []featurestore.Lookup{
		{View: v1, Keys: []string{"u1", "u9"}, Features: []int{3}, Rows: make([]featurestore.Row, 2)},
		{View: v2, Keys: []string{"u9", "u1"}, Features: []int{3, 2}, Rows: make([]featurestore.Row, 2)},
	}
	if err := s.Read(context.Background(), lookups); err != nil {
		t.Fatal(err)
	}
	if r := lookups[0].Rows; !r[0].Found || r[0].Values[0].Str != "one" || r[1].Found {
		t.Errorf("view 1 rows %+v", r)
	}
	if r := lookups[1].Rows; r[0].Values[0].Str != "nine" || r[0].Values[1].Int != -27 || r[1].Values[0].Str != "two" {
		t.Errorf("view 2 rows %+v", r)
	}
}

func testCompositeKeys(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s, "user_id", "merchant_id")
	k1, k2 := featurestore.Key([]string{"u1", "m1"}), featurestore.Key([]string{"u1", "m2"})
	write(t, s, v, row(k1, at(1), 1, "a"), row(k2, at(1), 2, "b"))
	got := read(t, s, v, all(v), k2, k1)
	same(t, got[0], row(k2, at(1), 2, "b"))
	same(t, got[1], row(k1, at(1), 1, "a"))
}

func testSchemaChange(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	old := row("u1", at(1), 4, "kept")
	write(t, s, v, old)

	grown := *v
	grown.Features = append(append([]featurestore.Feature{}, v.Features...), featurestore.Feature{Name: "score", Type: featurestore.Double})
	prepare(t, s, &grown)
	got := read(t, s, &grown, all(&grown), "u1")[0]
	want := old
	want.Values = append(append([]featurestore.Value{}, old.Values...), featurestore.Value{})
	same(t, got, want)
	next := row("u2", at(2), 5, "new")
	next.Values = append(next.Values, featurestore.Value{Type: featurestore.Double, Num: 0.125})
	write(t, s, &grown, next)
	same(t, read(t, s, &grown, all(&grown), "u2")[0], next)

	shrunk := grown
	shrunk.Features = []featurestore.Feature{grown.Features[3], grown.Features[6]} // city, score
	prepare(t, s, &shrunk)
	got = read(t, s, &shrunk, all(&shrunk), "u2")[0]
	same(t, got, featurestore.Row{Key: "u2", EventTS: at(2), Values: []featurestore.Value{next.Values[3], next.Values[6]}})
}

func testDrop(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	write(t, s, v, row("u1", at(1), 1, "x"))
	if err := s.Drop(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	prepare(t, s, v)
	if got := read(t, s, v, all(v), "u1"); got[0].Found {
		t.Errorf("row survived Drop: %+v", got[0])
	}
}

func testManyKeys(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	const n = 1000
	rows := make([]featurestore.Row, n)
	keys := make([]string, n+10)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("user-%d", i), at(i%60), float32(i), fmt.Sprint("city-", i))
		keys[i] = rows[i].Key
	}
	for i := n; i < len(keys); i++ {
		keys[i] = fmt.Sprintf("missing-%d", i)
	}
	write(t, s, v, rows...)
	got := read(t, s, v, all(v), keys...)
	for i := range rows {
		same(t, got[i], rows[i])
	}
	for _, r := range got[n:] {
		if r.Found {
			t.Errorf("missing key %s read as found", r.Key)
		}
	}
}

func testConcurrent(t *testing.T, s featurestore.OnlineStore) {
	v := newView(t, s)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				key := fmt.Sprintf("w%d", w)
				if err := s.Write(context.Background(), v, []featurestore.Row{row(key, at(i), float32(i), "c")}); err != nil {
					t.Error(err)
					return
				}
				rows := make([]featurestore.Row, 1)
				if err := s.Read(context.Background(), []featurestore.Lookup{{View: v, Keys: []string{key}, Features: []int{0}, Rows: rows}}); err != nil {
					t.Error(err)
					return
				}
				if !rows[0].Found || rows[0].Values[0].Num < float64(i) {
					t.Errorf("worker %d read %+v after writing %d", w, rows[0], i)
					return
				}
			}
		})
	}
	wg.Wait()
}
