package storetest

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
)

// TestViewStore runs the featurestore.ViewStore conformance suite, one
// subtest per part of the contract. open must return a new, empty store each
// time it is called, and close it (if it needs closing) when the test ends.
// The contract does not order Views, so the suite compares them by name.
func TestViewStore(t *testing.T, open func(t *testing.T) featurestore.ViewStore) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s featurestore.ViewStore)
	}{
		{"PutThenList", testPutThenList},
		{"PutReplaces", testPutReplaces},
		{"Delete", testDeleteView},
		{"DeleteMissing", testDeleteMissingView},
		{"EveryFieldRoundTrips", testViewRoundTrips},
		{"ManyViews", testManyViews},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// created is a fixed instant in UTC, to the nanosecond, which every backend
// must keep exactly.
var created = time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)

// sampleView returns the view name at revision rev, with every field set and
// a feature named after the revision, so that two revisions never look alike.
func sampleView(name string, rev int) *featurestore.View {
	return &featurestore.View{
		Name:     name,
		Entities: []string{"user_id", "merchant_id"},
		Features: []featurestore.Feature{
			{Name: "age", Type: featurestore.Float},
			{Name: "income", Type: featurestore.Double},
			{Name: "visits", Type: featurestore.Int},
			{Name: "city", Type: featurestore.String},
			{Name: "vip", Type: featurestore.Bool},
			{Name: "embedding", Type: featurestore.FloatList},
			{Name: fmt.Sprintf("rev_%d", rev), Type: featurestore.Int},
		},
		TTL:       featurestore.Duration(36 * time.Hour),
		Store:     "redis",
		CacheTTL:  featurestore.Duration(1500 * time.Millisecond),
		CreatedAt: created,
		UpdatedAt: created.Add(time.Duration(rev) * time.Minute),
	}
}

func putView(t *testing.T, s featurestore.ViewStore, v *featurestore.View) {
	t.Helper()
	if err := s.PutView(context.Background(), v); err != nil {
		t.Fatalf("PutView %s: %v", v.Name, err)
	}
}

func deleteView(t *testing.T, s featurestore.ViewStore, name string) {
	t.Helper()
	if err := s.DeleteView(context.Background(), name); err != nil {
		t.Fatalf("DeleteView %s: %v", name, err)
	}
}

// wantViews fails t unless s holds exactly want, in any order.
func wantViews(t *testing.T, s featurestore.ViewStore, want ...*featurestore.View) {
	t.Helper()
	got, err := s.Views(context.Background())
	if err != nil {
		t.Fatalf("Views: %v", err)
	}
	byName := func(a, b *featurestore.View) int { return cmp.Compare(a.Name, b.Name) }
	got = slices.SortedFunc(slices.Values(got), byName)
	want = slices.SortedFunc(slices.Values(want), byName)
	if len(got) != len(want) {
		t.Fatalf("Views = %d views; want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("Views[%d] =\n %+v\nwant\n %+v", i, got[i], want[i])
		}
	}
}

func testPutThenList(t *testing.T, s featurestore.ViewStore) {
	wantViews(t, s)
	a, b := sampleView("users", 1), sampleView("merchants", 1)
	putView(t, s, a)
	putView(t, s, b)
	wantViews(t, s, a, b)
}

func testPutReplaces(t *testing.T, s featurestore.ViewStore) {
	other := sampleView("merchants", 1)
	putView(t, s, other)
	putView(t, s, sampleView("users", 1))
	v := sampleView("users", 2)
	v.Features = v.Features[1:]
	v.Store = "cassandra"
	putView(t, s, v)
	wantViews(t, s, other, v)
}

func testDeleteView(t *testing.T, s featurestore.ViewStore) {
	keep := sampleView("merchants", 1)
	putView(t, s, keep)
	putView(t, s, sampleView("users", 1))
	deleteView(t, s, "users")
	wantViews(t, s, keep)
	deleteView(t, s, "merchants")
	wantViews(t, s)
}

func testDeleteMissingView(t *testing.T, s featurestore.ViewStore) {
	deleteView(t, s, "users")
	keep := sampleView("merchants", 1)
	putView(t, s, keep)
	deleteView(t, s, "users")
	deleteView(t, s, "merchants")
	deleteView(t, s, "merchants")
	wantViews(t, s)
}

// testViewRoundTrips puts views with every field set, and with every
// optional one at its zero value: each comes back equal.
func testViewRoundTrips(t *testing.T, s featurestore.ViewStore) {
	full := sampleView("users", 3)
	if err := full.Check(); err != nil {
		t.Fatal(err)
	}
	bare := &featurestore.View{
		Name:     "bare",
		Entities: []string{"id"},
		Features: []featurestore.Feature{{Name: "score", Type: featurestore.Double}},
	}
	putView(t, s, full)
	putView(t, s, bare)
	wantViews(t, s, full, bare)
}

func testManyViews(t *testing.T, s featurestore.ViewStore) {
	const n = 200
	var want []*featurestore.View
	for i := range n {
		v := sampleView(fmt.Sprintf("view_%03d", n-i), i)
		putView(t, s, v)
		if i%10 == 0 {
			deleteView(t, s, v.Name)
			continue
		}
		want = append(want, v)
	}
	wantViews(t, s, want...)
}
