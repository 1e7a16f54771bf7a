package drift

import (
	"fmt"
	"slices"
	"time"
)

// WindowSnapshot is one replica's counts in one window of a monitor: what
// a replica publishes to the fleet, and what the leader merges to judge the
// window. A window is keyed by the monitor, its start and the model version
// the monitor compares with (Model.UUID), so that replicas that compare
// with different versions are never mixed.
type WindowSnapshot struct {
	Replica string    `json:"replica"`
	Monitor string    `json:"monitor"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Model   ModelInfo `json:"model"`
	// Taken is when the replica took the snapshot, by its clock.
	Taken time.Time `json:"taken"`
	// Final is true once the replica has closed the window: its counts no
	// longer change.
	Final bool `json:"final,omitempty"`
	// Samples is the number of Observe calls in the window.
	Samples int64            `json:"samples"`
	Series  []SeriesSnapshot `json:"series"`
}

// SeriesSnapshot is the counts of one feature or prediction in a window:
// a numeric histogram over the baseline's edges, or a categorical one, and
// the observations without a usable value.
type SeriesSnapshot struct {
	Name        string               `json:"name"`
	Prediction  bool                 `json:"prediction,omitempty"`
	Missing     int64                `json:"missing"`
	Numeric     *NumericSnapshot     `json:"numeric,omitempty"`
	Categorical *CategoricalSnapshot `json:"categorical,omitempty"`
}

// count is the number of values counted.
func (s SeriesSnapshot) count() int64 {
	switch {
	case s.Numeric != nil:
		return s.Numeric.Count
	case s.Categorical != nil:
		return s.Categorical.Count
	}
	return 0
}

// Snapshot returns the counts of the current window so far, without
// closing it, and true; or false when the monitor is not running. Its
// Replica and Taken are left for the caller to fill in; its End is when the
// window is due to close.
func (m *Monitor) Snapshot() (WindowSnapshot, bool) {
	w := m.cur.Load()
	if w == nil {
		return WindowSnapshot{}, false
	}
	return m.snapshot(w), true
}

// snapshot adds up w's shards. Observations in flight may be counted in
// Samples and not yet in the series, or the other way round.
func (m *Monitor) snapshot(w *window) WindowSnapshot {
	snap := WindowSnapshot{
		Monitor: m.spec.Name, Start: w.start, End: w.start.Add(time.Duration(m.spec.Window)),
		Model: m.model, Samples: w.samples(), Series: make([]SeriesSnapshot, len(m.series)),
	}
	for i := range m.series {
		s := &m.series[i]
		ss := SeriesSnapshot{Name: s.name, Prediction: s.prediction}
		if s.numeric() {
			h := newNumeric(s.edges)
			for k := range w.shards {
				// Same edges, no negative counts: the merge cannot fail.
				_ = h.MergeSnapshot(w.shards[k].numeric[i].Snapshot())
			}
			hs := h.Snapshot()
			ss.Numeric = &hs
		} else {
			h := NewCategorical(len(s.cats), s.cats...)
			for k := range w.shards {
				h.Merge(w.shards[k].categorical[i])
			}
			hs := h.Snapshot()
			ss.Categorical = &hs
		}
		for k := range w.shards {
			ss.Missing += w.shards[k].missing[i].Load()
		}
		snap.Series[i] = ss
	}
	return snap
}

// roll closes the current window once its time is up (now at least Window
// after it opened), as Evaluate does, but without judging it: it returns
// the window's final snapshot and true, or false while the window is open
// or the monitor is not running. The next window opens at now (on the
// clock's multiple of Window, for an aligned monitor).
func (m *Monitor) roll(now time.Time) (WindowSnapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.cur.Load()
	if w == nil || now.Before(w.start.Add(time.Duration(m.spec.Window))) {
		return WindowSnapshot{}, false
	}
	m.closeWindow(w, now)
	snap := m.snapshot(w)
	snap.Final = true
	return snap, true
}

// JudgeWindow judges the window of the monitor from start to end on the
// merged counts of snaps, the replicas' snapshots of that window, as
// Evaluate judges a window of its own; the report raises no alert, and the
// monitor's own windows and history do not change. Every snapshot must be
// of this monitor, of the window of start and of the model version the
// monitor compares with (Model.UUID), and hold only the monitor's series,
// over its baseline's bins, with no negative count; otherwise JudgeWindow
// returns an error matching ErrInvalid that names the snapshot's replica,
// and judges nothing. A monitor that is not running cannot judge: that is
// an error matching ErrInvalid too.
func (m *Monitor) JudgeWindow(start, end time.Time, snaps []WindowSnapshot) (*WindowReport, error) {
	if m.err != nil {
		return nil, &causeError{msg: fmt.Sprintf("monitor %q is not running: %v", m.spec.Name, m.err), cause: m.err}
	}
	for _, s := range snaps {
		if err := m.fits(s, start); err != nil {
			return nil, err
		}
	}
	w := m.newWindow(start, 1)
	sh := &w.shards[0]
	for _, s := range snaps {
		sh.samples.Add(s.Samples)
		for _, ss := range s.Series {
			i := m.seriesIndex(ss.Name, ss.Prediction)
			sh.missing[i].Add(ss.Missing)
			// fits checked the edges and counts: the merges cannot fail.
			if ss.Numeric != nil {
				_ = sh.numeric[i].MergeSnapshot(*ss.Numeric)
			} else {
				_ = sh.categorical[i].MergeSnapshot(*ss.Categorical)
			}
		}
	}
	return m.report(w, end), nil
}

// seriesIndex returns the index of the series of name, or −1.
func (m *Monitor) seriesIndex(name string, prediction bool) int {
	for i := range m.series {
		if m.series[i].name == name && m.series[i].prediction == prediction {
			return i
		}
	}
	return -1
}

// fits checks that s can be merged into the monitor's window of start (see
// JudgeWindow).
func (m *Monitor) fits(s WindowSnapshot, start time.Time) error {
	bad := func(format string, args ...any) error {
		return invalid("window snapshot of replica %q: %s", s.Replica, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Monitor != m.spec.Name:
		return bad("of monitor %q, not %q", s.Monitor, m.spec.Name)
	case !s.Start.Equal(start):
		return bad("of the window of %v, not %v", s.Start, start)
	case s.Model.UUID != m.model.UUID:
		return bad("of model version %q, not %q", s.Model.UUID, m.model.UUID)
	case s.Samples < 0:
		return bad("samples: must not be negative, got %d", s.Samples)
	}
	for _, ss := range s.Series {
		i := m.seriesIndex(ss.Name, ss.Prediction)
		if i < 0 {
			return bad("series %q is not watched", ss.Name)
		}
		ser := &m.series[i]
		if ss.Missing < 0 {
			return bad("series %q: missing: must not be negative, got %d", ss.Name, ss.Missing)
		}
		if ser.numeric() {
			if ss.Numeric == nil || ss.Categorical != nil {
				return bad("series %q: want a numeric histogram", ss.Name)
			}
			if !slices.Equal(ss.Numeric.Edges, ser.edges) || len(ss.Numeric.Counts) != len(ser.edges)+1 {
				return bad("series %q: not over the baseline's bins", ss.Name)
			}
			if slices.ContainsFunc(ss.Numeric.Counts, func(c int64) bool { return c < 0 }) {
				return bad("series %q: counts must not be negative", ss.Name)
			}
			continue
		}
		if ss.Categorical == nil || ss.Numeric != nil {
			return bad("series %q: want a categorical histogram", ss.Name)
		}
		if ss.Categorical.Other < 0 {
			return bad("series %q: other must not be negative", ss.Name)
		}
		for v, c := range ss.Categorical.Categories {
			if c < 0 {
				return bad("series %q: categories[%q] must not be negative", ss.Name, v)
			}
		}
	}
	return nil
}

// fleetView is what a replica knows of a monitor from the fleet: the
// leader's reports of its windows, when it last alerted, and the other
// replicas' snapshots of the current window as last published.
type fleetView struct {
	replica   string
	history   []WindowReport
	lastAlert time.Time
	others    []WindowSnapshot
}

// addOthers adds to c, this replica's current window, the other replicas'
// counts of the same window and model version, and fills c.Replicas.
func (v *fleetView) addOthers(c *CurrentWindow, model ModelInfo) {
	c.Replicas = map[string]int64{v.replica: c.Samples}
	for _, o := range v.others {
		if o.Replica == v.replica || !o.Start.Equal(c.Start) || o.Model.UUID != model.UUID {
			continue
		}
		c.Replicas[o.Replica] += o.Samples
		c.Samples += o.Samples
		for _, ss := range o.Series {
			counts := c.Features
			if ss.Prediction {
				counts = c.Predictions
			}
			if _, ok := counts[ss.Name]; ok {
				counts[ss.Name] += ss.count()
			}
		}
	}
}
