// Package query reads the inference table for what the gateway measures
// from it: the drift observations of a time range of predictions, a
// baseline built from them, and a model's quality on its labelled
// predictions. It reads through Rows: a tables.Dir reads the complete
// files, a *tables.Writer the rows it still holds too, so that a report
// sees every prediction recorded before it without completing a file.
//
// A recorded row reaches a drift monitor as it did online: one observation
// per entity row, its features named "view:feature" (from the row's
// feature values) or by the request's input name, with "[j]" for column j
// of an input of more than one dimension, and its predictions named the
// same way from the response's outputs. Only served predictions count: not
// shadow copies, not failed requests.
package query

import (
	"context"
	"fmt"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/serving/tables"
)

// Rows reads rows of the inference table.
type Rows interface {
	// ReadRows calls fn with each row that f selects. It stops at fn's
	// first error and returns it unwrapped, and returns ctx's error once
	// ctx ends.
	ReadRows(ctx context.Context, f tables.Filter, fn func(tables.Row) error) error
}

var (
	_ Rows = tables.Dir("")
	_ Rows = (*tables.Writer)(nil)
)

// MonitorFilter selects the rows a monitor watches, From <= Timestamp < To
// (zero times select all): those of its endpoint, or of its model through
// any endpoint.
func MonitorFilter(spec drift.MonitorSpec, from, to time.Time) tables.Filter {
	f := tables.Filter{Endpoint: spec.Endpoint, From: from, To: to}
	if spec.Model != "" {
		f.Model = drift.ModelName(spec.Model)
	}
	return f
}

// Observe calls observe with the entity rows of each served prediction f
// selects (see the package documentation). It returns ctx's error once ctx
// ends, and wraps the errors of reading the table.
func Observe(ctx context.Context, rows Rows, f tables.Filter, observe func(features, predictions map[string]any)) error {
	err := served(ctx, rows, f, func(s Series) { observe(s.Features, s.Predictions) })
	if err != nil {
		return fmt.Errorf("read the inference table: %w", err)
	}
	return nil
}

// baselineBins is how many bins a baseline built from the inference table
// has per numeric series.
const baselineBins = 10

// Baseline builds the baseline of the monitor spec from the served
// predictions it watches with start <= timestamp < end, 10 bins per numeric
// series. It returns a drift.ErrInvalid error if there are none, ctx's
// error once ctx ends, and wraps the errors of reading the table.
func Baseline(ctx context.Context, rows Rows, spec drift.MonitorSpec, start, end time.Time) (*drift.Baseline, error) {
	b := drift.NewBaselineBuilder()
	n := 0
	err := served(ctx, rows, MonitorFilter(spec, start, end), func(s Series) {
		n++
		// A value of another kind than the series' first is not counted.
		for k, v := range s.Features {
			b.Add(k, v)
		}
		for k, v := range s.Predictions {
			b.AddPrediction(k, v)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read the inference table for the baseline: %w", err)
	}
	if n == 0 {
		return nil, drift.Invalid("baseline: the inference table has no predictions from %s to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return b.Build(baselineBins), nil
}

// served calls fn with each entity row of the served predictions f selects.
func served(ctx context.Context, rows Rows, f tables.Filter, fn func(Series)) error {
	return rows.ReadRows(ctx, f, func(r tables.Row) error {
		if !isServed(&r) {
			return nil
		}
		for _, s := range SeriesOf(r) {
			fn(s)
		}
		return nil
	})
}

// isServed reports whether r is a prediction answered to its caller: not a
// shadow copy, not a failure.
func isServed(r *tables.Row) bool { return !r.IsShadow && r.StatusCode == 200 }
