package tables

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	rows := []Row{
		row(1, "churn", "churn-xgb", t0),
		{},
		{RequestID: "r", Timestamp: time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), StatusCode: -1, LatencyUS: -5, IsShadow: true, Error: "x\n\x00ü"},
	}
	var log []byte
	for i := range rows {
		log, _ = appendRecord(log, nil, &rows[i])
	}
	var got []Row
	skipped, err := readRecords(bufio.NewReader(bytes.NewReader(log)), func(r Row) error { got = append(got, r); return nil }, nil)
	if err != nil || skipped != 0 || len(got) != len(rows) {
		t.Fatalf("read %d rows, skipped %d, err %v; want %d rows", len(got), skipped, err, len(rows))
	}
	for i, want := range rows {
		want.Timestamp = time.UnixMicro(want.Timestamp.UnixMicro()).UTC()
		if got[i] != want {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
}

func TestRecordDamage(t *testing.T) {
	r := row(1, "churn", "churn-xgb", t0)
	one, _ := appendRecord(nil, nil, &r)
	flipped := bytes.Clone(one)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name          string
		log           []byte
		rows, skipped int
	}{
		{"empty", nil, 0, 0},
		{"whole", append(bytes.Clone(one), one...), 2, 0},
		{"torn record", append(bytes.Clone(one), one[:len(one)-1]...), 1, 1},
		{"torn length", append(bytes.Clone(one), 0x80), 1, 1},
		{"damaged payload", append(flipped, one...), 1, 1},
		{"no length", bytes.Repeat([]byte{0xff}, 11), 0, 1},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0x7f}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			skipped, err := readRecords(bufio.NewReader(bytes.NewReader(tt.log)), func(Row) error { n++; return nil }, nil)
			if err != nil || n != tt.rows || int(skipped) != tt.skipped {
				t.Errorf("read %d rows, skipped %d, err %v; want %d, %d", n, skipped, err, tt.rows, tt.skipped)
			}
		})
	}
}

// FuzzReadRecords checks that damaged logs never panic, and that a payload
// that decodes encodes back to itself.
func FuzzReadRecords(f *testing.F) {
	r := row(1, "churn", "churn-xgb", t0)
	one, _ := appendRecord(nil, nil, &r)
	f.Add(one)
	f.Add(one[:len(one)-2])
	f.Add([]byte{0x03, 'a', 'b', 'c', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, log []byte) {
		readRecords(bufio.NewReader(bytes.NewReader(log)), func(r Row) error {
			again, _ := appendRecord(nil, nil, &r)
			var back []Row
			readRecords(bufio.NewReader(bytes.NewReader(again)), func(r Row) error { back = append(back, r); return nil }, nil)
			if len(back) != 1 || back[0] != r {
				t.Fatalf("row %+v does not round-trip", r)
			}
			return nil
		}, nil)
	})
}
