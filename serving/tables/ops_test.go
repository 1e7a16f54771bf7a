package tables

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestReadRowsFilter(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	rows := []Row{
		row(0, "churn", "churn-xgb", t0),
		row(1, "churn", "churn-lr", t0.Add(time.Hour)),
		row(2, "churn", "churn-xgb", t0.Add(25*time.Hour)),
		row(3, "fraud", "fraud-gbm", t0),
		row(4, "", "churn-xgb", t0.Add(-25*time.Hour)),
	}
	for _, r := range rows {
		w.Write(r)
	}
	closeWriter(t, w)
	tests := []struct {
		name string
		f    Filter
		want []int
	}{
		{"all", Filter{}, []int{0, 1, 2, 3, 4}},
		{"endpoint", Filter{Endpoint: "churn"}, []int{0, 1, 2}},
		{"model across endpoints", Filter{Model: "churn-xgb"}, []int{0, 2, 4}},
		{"endpoint and model", Filter{Endpoint: "churn", Model: "churn-xgb"}, []int{0, 2}},
		{"from", Filter{From: t0.Add(time.Hour)}, []int{1, 2}},
		{"to is exclusive", Filter{To: t0.Add(time.Hour)}, []int{0, 3, 4}},
		{"window", Filter{From: t0, To: t0.Add(2 * time.Hour)}, []int{0, 1, 3}},
		{"unknown endpoint", Filter{Endpoint: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, r := range readAll(t, dir, tt.f) {
				for i := range rows {
					if rows[i].RequestID == r.RequestID {
						got = append(got, i)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
		})
	}

	stop := errors.New("stop")
	n := 0
	err := Dir(dir).ReadRows(t.Context(), Filter{}, func(Row) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("ReadRows with fn failing = %v after %d rows, want stop after 1", err, n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n = 0
	err = Dir(dir).ReadRows(ctx, Filter{}, func(Row) error { n++; return nil })
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("ReadRows with its context ended = %v after %d rows, want context.Canceled before any", err, n)
	}
	if _, err := Dir(dir).ReadLabels(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadLabels with its context ended = %v, want context.Canceled", err)
	}
}

// entityRows are rows whose entities are given, in files of their days
// (after t0).
var entityRows = []struct {
	day      int
	entities string
}{
	{0, `{"user_id":"u1"}`},
	{0, `{"user_id":"u2"}`},
	{0, `{"user_id": "u1", "country": "FR"}`},
	{1, `{"user_id":"u1"}`}, // the only row of its file
	{2, `{"user_id":42}`},
	{2, `{"user_id":"42"}`},
	{2, `{"account":"u1"}`},
	{2, `{"user_id":4.2e1}`},
	{2, `{"us\u0065r_id":"u2"}`},
	{2, ``},
	{2, `not json`},
}

func writeEntityRows(t *testing.T, dir string) {
	w := open(t, Options{Dir: dir})
	for i, e := range entityRows {
		r := row(i, "e", "m", t0.AddDate(0, 0, e.day))
		r.Entities = e.entities
		w.Write(r)
	}
	closeWriter(t, w)
}

func TestDeleteEntity(t *testing.T) {
	tests := []struct {
		column, value string
		deleted       []int
	}{
		{"user_id", "u1", []int{0, 2, 3}},
		{"user_id", "u2", []int{1, 8}},
		{"user_id", "42", []int{4, 5}},
		{"country", "FR", []int{2}},
		{"account", "u1", []int{6}},
		{"user_id", "nobody", nil},
	}
	for _, tt := range tests {
		t.Run(tt.column+"="+tt.value, func(t *testing.T) {
			dir := t.TempDir()
			writeEntityRows(t, dir)
			before, _ := List(dir)
			n, err := DeleteEntity(dir, tt.column, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tt.deleted)) {
				t.Errorf("removed %d rows, want %d", n, len(tt.deleted))
			}
			left := map[string]bool{}
			for _, r := range readAll(t, dir, Filter{}) {
				left[r.RequestID] = true
			}
			for i := range entityRows {
				id := row(i, "", "", t0).RequestID
				if want := !slices.Contains(tt.deleted, i); left[id] != want {
					t.Errorf("row %d (%s) kept: %v, want %v", i, entityRows[i].entities, left[id], want)
				}
			}
			after, _ := List(dir)
			if slices.Contains(tt.deleted, 3) && len(after) != len(before)-1 {
				t.Errorf("%d files after deleting the only row of one, want %d", len(after), len(before)-1)
			}
			if tmp := filesNamed(t, dir, isTemp); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
	if _, err := DeleteEntity(t.TempDir(), "", "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("DeleteEntity with no column = %v, want ErrInvalid", err)
	}
}

func TestWriterDeleteEntity(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	for i := range 100 {
		w.Write(row(i, "churn", "m", t0)) // user_id u0 ... u9
	}
	// Without Flush: the rows still buffered are deleted too.
	n, err := w.DeleteEntity(context.Background(), "user_id", "u3")
	if err != nil || n != 10 {
		t.Fatalf("DeleteEntity = %d, %v; want 10 rows", n, err)
	}
	after := row(3, "churn", "m", time.Time{}) // made after the delete: kept
	w.Write(after)
	closeWriter(t, w)
	got := 0
	for _, r := range readAll(t, dir, Filter{}) {
		if r.Entities == `{"user_id":"u3"}` {
			got++
		}
	}
	if got != 1 {
		t.Errorf("%d rows of u3 left, want the 1 written after the delete", got)
	}
	if rows := readAll(t, dir, Filter{}); len(rows) != 91 {
		t.Errorf("%d rows, want 91", len(rows))
	}
}

func TestLabels(t *testing.T) {
	dir := t.TempDir()
	if err := AppendLabels(dir, []Label{
		{RequestID: "r1", Label: 1, Timestamp: t0},
		{RequestID: "r2", Label: 0, Timestamp: t0.Add(24 * time.Hour)},
		{RequestID: "r3", Label: 0.5, Timestamp: t0},
	}); err != nil {
		t.Fatal(err)
	}
	// A later label for r1 wins, and an earlier one for r3 does not.
	if err := AppendLabels(dir, []Label{
		{RequestID: "r1", Label: 0, Timestamp: t0.Add(time.Hour)},
		{RequestID: "r3", Label: 1, Timestamp: t0.Add(-time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := Dir(dir).ReadLabels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"r1": 0, "r2": 0, "r3": 0.5}
	if !maps.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, f := range files {
		if f.Table != TableLabels {
			t.Errorf("file %+v not in the labels table", f)
		}
		dates = append(dates, f.Date)
	}
	if want := []string{"2025-03-14", "2025-03-14", "2025-03-15"}; !slices.Equal(slices.Sorted(slices.Values(dates)), want) {
		t.Errorf("label files of dates %v, want %v", dates, want)
	}
	if err := AppendLabels(dir, []Label{{Label: 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendLabels without request id = %v, want ErrInvalid", err)
	}
	if got, err := Dir(t.TempDir()).ReadLabels(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("ReadLabels of an empty table = %v, %v", got, err)
	}
}
