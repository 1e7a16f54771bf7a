package tables

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var someTombstones = []tombstone{
	{column: "user_id", value: "u1", before: t0.Truncate(time.Microsecond)},
	{column: "account", value: "", before: t0.Add(time.Hour).Truncate(time.Microsecond)},
	{column: "ключ", value: "42", before: time.UnixMicro(-5).UTC()},
}

func encodeTombstones(ts []tombstone) []byte {
	var b []byte
	for _, t := range ts {
		b = appendTombstone(b, t)
	}
	return b
}

func TestParseTombstones(t *testing.T) {
	whole := encodeTombstones(someTombstones)
	first := len(appendTombstone(nil, someTombstones[0]))
	damaged := slices.Clone(whole)
	damaged[first+3] ^= 0xff // in the second record's payload
	noColumn := appendFrame(nil, []byte{tombstoneVersion, 0, 0, 0})
	otherVersion := appendFrame(nil, append([]byte{9}, whole[2:first-4]...))
	tests := []struct {
		name    string
		b       []byte
		want    []tombstone
		n       int
		skipped int
	}{
		{"empty", nil, nil, 0, 0},
		{"whole", whole, someTombstones, len(whole), 0},
		{"torn", whole[:len(whole)-2], someTombstones[:2], len(whole) - len(appendTombstone(nil, someTombstones[2])), 0},
		{"torn length", append(slices.Clone(whole), 0x80), someTombstones, len(whole), 0},
		{"damaged", damaged, []tombstone{someTombstones[0], someTombstones[2]}, len(whole), 1},
		{"no column", append(noColumn, whole...), someTombstones, len(noColumn) + len(whole), 1},
		{"other version", append(otherVersion, whole...), someTombstones, len(otherVersion) + len(whole), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, skipped := parseTombstones(tt.b)
			if !slices.EqualFunc(got, tt.want, sameTombstone) || n != tt.n || skipped != tt.skipped {
				t.Errorf("parseTombstones = %v, %d, %d; want %v, %d, %d", got, n, skipped, tt.want, tt.n, tt.skipped)
			}
		})
	}
}

func sameTombstone(a, b tombstone) bool {
	return a.column == b.column && a.value == b.value && a.before.Equal(b.before)
}

// TestAddTombstone appends after a record a crashed delete left cut short:
// the new one is read, and so is the file's whole content.
func TestAddTombstone(t *testing.T) {
	dir := t.TempDir()
	whole := encodeTombstones(someTombstones[:2])
	if err := os.WriteFile(filepath.Join(dir, deletesFile), append(whole, appendTombstone(nil, someTombstones[2])[:5]...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openDeletes(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := addTombstone(f, someTombstones[2]); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got, n, _ := parseTombstones(b); !slices.EqualFunc(got, someTombstones, sameTombstone) || n != len(b) {
		t.Errorf("after addTombstone: %v in %d of %d bytes, want %v in all", got, n, len(b), someTombstones)
	}
}

func TestTombSet(t *testing.T) {
	var s tombSet
	s.add(tombstone{column: "user_id", value: "u1", before: t0})
	s.add(tombstone{column: "user_id", value: "42", before: t0.Add(time.Hour)})
	s.add(tombstone{column: "user_id", value: "u1", before: t0.Add(-time.Hour)}) // an earlier delete of u1 changes nothing
	tests := []struct {
		entities string
		ts       time.Time
		want     bool
	}{
		{`{"user_id":"u1"}`, t0.Add(-time.Second), true},
		{`{"user_id":"u1"}`, t0, false},
		{`{"country":"FR","user_id":"u1"}`, t0.Add(-time.Second), true},
		{`{"user_id":"u2"}`, t0.Add(-time.Second), false},
		{`{"user_id":42}`, t0.Add(time.Minute), true},
		{`{"user_id":"42"}`, t0.Add(time.Minute), true},
		{`{"user_id":"u\u0031"}`, t0.Add(-time.Second), true},
		{`{"account":"u1"}`, t0.Add(-time.Second), false},
		{`not json`, t0.Add(-time.Second), false},
		{``, t0.Add(-time.Second), false},
		{`{"user_id":"42"}`, t0.Add(2 * time.Hour), false},
	}
	for _, tt := range tests {
		r := Row{Entities: tt.entities, Timestamp: tt.ts}
		if got := s.drops(&r); got != tt.want {
			t.Errorf("drops(%s at %s) = %v, want %v", tt.entities, tt.ts.Sub(t0), got, tt.want)
		}
	}
	var none tombSet
	if r := (Row{Entities: `{"user_id":"u1"}`, Timestamp: t0}); none.drops(&r) {
		t.Error("an empty set drops a row")
	}
}

// FuzzParseTombstones: any bytes (a damaged _deletes file) parse without
// panic, within the input, and what parses encodes and parses back the same.
func FuzzParseTombstones(f *testing.F) {
	whole := encodeTombstones(someTombstones)
	f.Add(whole)
	f.Add(whole[:len(whole)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(appendFrame(nil, []byte{tombstoneVersion, 0x80}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, skipped := parseTombstones(b)
		if n < 0 || n > len(b) || skipped < 0 {
			t.Fatalf("parseTombstones = %d tombstones, %d bytes, %d skipped of %d", len(got), n, skipped, len(b))
		}
		again, m, skippedAgain := parseTombstones(encodeTombstones(got))
		if !slices.EqualFunc(again, got, sameTombstone) || skippedAgain != 0 || m != len(encodeTombstones(got)) {
			t.Errorf("round trip of %v gives %v", got, again)
		}
	})
}

// BenchmarkTombSetDrops_Tombstones1000 matches a row against a thousand
// tombstones: one made after them all (as nearly every row is), and one
// made before, whose entities are decoded.
func BenchmarkTombSetDrops_Tombstones1000(b *testing.B) {
	var s tombSet
	for i := range 1000 {
		s.add(tombstone{column: "user_id", value: fmt.Sprintf("u%d", 1000+i), before: t0})
	}
	for _, bb := range []struct {
		name string
		ts   time.Time
	}{{"After", t0.Add(time.Second)}, {"Before", t0.Add(-time.Second)}} {
		b.Run(bb.name, func(b *testing.B) {
			r := row(1, "churn", "m", bb.ts)
			b.ReportAllocs()
			for b.Loop() {
				if s.drops(&r) {
					b.Fatal("dropped")
				}
			}
		})
	}
}
