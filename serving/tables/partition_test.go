package tables

import (
	"strings"
	"testing"
	"time"
)

// TestPartitionOf checks that rows are partitioned by the UTC date of their
// timestamp alone, whatever endpoint or model name they carry.
func TestPartitionOf(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{"endpoint", Row{Endpoint: "churn", ModelName: "churn-xgb", ModelVersion: 2, Timestamp: t0}, "date=2025-03-14"},
		{"model", Row{ModelName: "fraud", ModelVersion: 1, Timestamp: t0}, "date=2025-03-14"},
		{"unknown model", Row{ModelName: strings.Repeat("x", 250), StatusCode: 404, Timestamp: t0}, "date=2025-03-14"},
		{"path in the name", Row{Endpoint: "../../etc", ModelName: "a/b", Timestamp: t0}, "date=2025-03-14"},
		{"other zone", Row{Timestamp: time.Date(2025, 3, 15, 1, 0, 0, 0, time.FixedZone("UTC+10", 10*3600))}, "date=2025-03-14"},
		{"midnight", Row{Timestamp: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}, "date=2025-03-15"},
		{"before 1970", Row{Timestamp: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}, "date=1969-12-31"},
		{"first day", Row{Timestamp: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}, "date=0001-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := partitionOf(&tt.row).dir(); got != tt.want {
				t.Errorf("partition %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckRow(t *testing.T) {
	tests := []struct {
		ts     time.Time
		poison bool
	}{
		{t0, false},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		r := Row{Timestamp: tt.ts}
		if err := checkRow(&r); poisoned(err) != tt.poison {
			t.Errorf("checkRow(%s) = %v, want poisoned %v", tt.ts, err, tt.poison)
		}
	}
}
