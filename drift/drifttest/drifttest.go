// Package drifttest holds the conformance suite that every drift.Store
// backend runs: drift/bolt (one gateway's file) and drift/postgres (the
// store a fleet of gateways shares). A backend's test calls TestStore with a
// function that opens a new, empty store:
//
//	func TestStore(t *testing.T) {
//		drifttest.TestStore(t, func(t *testing.T) drift.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "monitors.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks the contract documented on drift.Store and nothing more,
// so that it holds for any backend. TestFleet is the same for drift.Fleet,
// run by drift/postgres and by MemFleet, the Fleet in memory that tests of
// several services in one process share.
package drifttest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
)

// TestStore runs the Store conformance suite, one subtest per part of the
// contract. open must return a new, empty store each time it is called, and
// close it (if it needs closing) when the test ends.
func TestStore(t *testing.T, open func(t *testing.T) drift.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s drift.Store)
	}{
		{"PutThenList", testPutThenList},
		{"PutReplaces", testPutReplaces},
		{"Delete", testDelete},
		{"FullSpecRoundTrips", testFullSpecRoundTrips},
		{"ManyMonitors", testManyMonitors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// Sample returns monitor name at revision rev: a spec whose window names
// the revision, so that two revisions never look alike.
func Sample(name string, rev int) drift.MonitorSpec {
	return drift.MonitorSpec{
		Name:       name,
		Endpoint:   "fraud",
		Baseline:   drift.BaselineModel,
		Window:     drift.Duration(time.Duration(rev) * time.Minute),
		MinSamples: drift.DefaultMinSamples,
		Cooldown:   drift.Duration(drift.DefaultCooldown),
	}
}

// full returns a spec with every field set.
func full() drift.MonitorSpec {
	return drift.MonitorSpec{
		Name:        "fraud-inputs",
		Model:       "fraud@champion",
		Baseline:    "2026-11-01T00:00:00Z/2026-11-08T00:00:00Z",
		Window:      drift.Duration(15 * time.Minute),
		MinSamples:  250,
		Features:    []string{"amount", "country", "card_age_days"},
		Predictions: true,
		Thresholds:  drift.Thresholds{PSI: 0.2, KSP: 0.01, JS: 0.1, Chi2P: 0.05},
		Webhook:     drift.Webhook{URL: "https://hooks.example.com/drift?team=risk", Secret: "s3cr3t-ünïcode"},
		Cooldown:    drift.Duration(90 * time.Minute),
	}
}

func put(t *testing.T, s drift.Store, spec drift.MonitorSpec) {
	t.Helper()
	if err := s.PutMonitor(context.Background(), spec); err != nil {
		t.Fatalf("PutMonitor(%s): %v", spec.Name, err)
	}
}

// Monitors returns the monitors of s, ordered by name (the contract
// promises no order).
func Monitors(t *testing.T, s drift.Store) []drift.MonitorSpec {
	t.Helper()
	specs, err := s.Monitors(context.Background())
	if err != nil {
		t.Fatalf("Monitors: %v", err)
	}
	slices.SortFunc(specs, func(a, b drift.MonitorSpec) int { return cmp.Compare(a.Name, b.Name) })
	return specs
}

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v (%v)", v, err)
	}
	return string(b)
}

// CheckMonitors fails t unless s lists exactly want, in any order.
func CheckMonitors(t *testing.T, what string, s drift.Store, want ...drift.MonitorSpec) {
	t.Helper()
	got := Monitors(t, s)
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b drift.MonitorSpec) int { return cmp.Compare(a.Name, b.Name) })
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, asJSON(got), asJSON(want))
	}
}

func testPutThenList(t *testing.T, s drift.Store) {
	CheckMonitors(t, "Monitors of an empty store", s)
	var want []drift.MonitorSpec
	for _, name := range []string{"fraud", "churn", "Ads", "ads-v2"} {
		spec := Sample(name, 1)
		put(t, s, spec)
		want = append(want, spec)
	}
	CheckMonitors(t, "Monitors after four Puts", s, want...)
}

func testPutReplaces(t *testing.T, s drift.Store) {
	other := Sample("other", 1)
	put(t, s, other)
	for rev := 1; rev <= 3; rev++ {
		spec := Sample("fraud", rev)
		put(t, s, spec)
		CheckMonitors(t, fmt.Sprintf("Monitors after Put #%d", rev), s, spec, other)
	}
	// A replacement may drop fields the replaced spec had.
	put(t, s, full())
	spec := full()
	spec.Features, spec.Webhook, spec.Predictions = nil, drift.Webhook{}, false
	put(t, s, spec)
	CheckMonitors(t, "Monitors after a Put that clears fields", s, spec, Sample("fraud", 3), other)
}

func testDelete(t *testing.T, s drift.Store) {
	ctx := context.Background()
	kept := Sample("kept", 1)
	put(t, s, kept)
	put(t, s, Sample("gone", 1))
	tests := []struct {
		name string
		del  string
	}{
		{"existing", "gone"},
		{"deleted already", "gone"},
		{"never put", "never"},
		{"name of another case", "Kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.DeleteMonitor(ctx, tt.del); err != nil {
				t.Fatalf("DeleteMonitor(%s): %v", tt.del, err)
			}
			CheckMonitors(t, "Monitors after DeleteMonitor", s, kept)
		})
	}
	// The deleted name can be put again.
	again := Sample("gone", 2)
	put(t, s, again)
	CheckMonitors(t, "Monitors after putting a deleted name again", s, again, kept)
}

func testFullSpecRoundTrips(t *testing.T, s drift.Store) {
	spec := full()
	put(t, s, spec)
	CheckMonitors(t, "Monitors", s, spec)
}

func testManyMonitors(t *testing.T, s drift.Store) {
	// 120 names, so that an order by anything but the name (such as numbers
	// sorted as text) or a listing cut at a page size shows.
	want := make([]drift.MonitorSpec, 120)
	for i := range want {
		want[i] = Sample(fmt.Sprintf("monitor-%d", i), i+1)
		put(t, s, want[i])
	}
	CheckMonitors(t, "Monitors after 120 Puts", s, want...)
}
