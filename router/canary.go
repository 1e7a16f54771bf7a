package router

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/mlgate/mlgate/internal/jsondur"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/registry"
)

// CanaryVariant is the name of the variant a canary adds to the policy.
const CanaryVariant = "canary"

// Canary states. A canary is active while running or paused; the others are
// final, and a new canary may then start.
const (
	CanaryRunning    = "running"
	CanaryPaused     = "paused"
	CanaryRolledBack = "rolled_back"
	CanaryPromoted   = "promoted"
	CanaryAborted    = "aborted"
)

// Canary spec defaults and limits.
const (
	DefaultPromoteAlias = "champion"
	MinCanaryInterval   = 100 * time.Millisecond
)

// Duration is a time.Duration written in JSON as a Go duration string such as
// "30s" or "15m".
type Duration = jsondur.Duration

// Analysis holds the rules a canary must pass at every step. A rule set to 0
// is off.
type Analysis struct {
	// MaxErrorRate is the highest error rate (0 to 1) of the canary's requests.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxP99LatencyMs is the highest p99 latency of the canary, in ms.
	MaxP99LatencyMs float64 `json:"max_p99_latency_ms"`
	// MinRequests is how many canary requests a step needs before it is
	// judged; until then the canary holds at the step.
	MinRequests int `json:"min_requests"`
	// MaxPredictionShift is the highest relative difference of the mean
	// numeric prediction, |canary − baseline| / |baseline|.
	MaxPredictionShift float64 `json:"max_prediction_shift"`
}

// CanarySpec is a canary schedule: the model to try, the weights (per cent)
// it gets step by step, how long each step lasts, the rules it must pass, and
// the alias to move to it once promoted ("" moves none).
type CanarySpec struct {
	Model        string   `json:"model"`
	Steps        []int    `json:"steps"`
	Interval     Duration `json:"interval"`
	Analysis     Analysis `json:"analysis"`
	PromoteAlias string   `json:"promote_alias"`
}

// DecodeCanarySpec decodes a canary spec strictly (unknown fields are errors),
// with promote_alias "champion" unless given, and checks it with Check(nil);
// the caller then checks the model with Check(resolve). Errors match
// ErrInvalid.
func DecodeCanarySpec(body []byte) (CanarySpec, error) {
	s := CanarySpec{PromoteAlias: DefaultPromoteAlias}
	if err := jsonerr.Decode(body, &s); err != nil {
		return CanarySpec{}, invalid("%v", err)
	}
	if err := s.Check(nil); err != nil {
		return CanarySpec{}, err
	}
	return s, nil
}

// Check reports whether the spec is well formed: steps strictly increasing
// within 1..100 and ending at 100, an interval of at least 100ms, analysis
// values not negative (an error rate at most 1), a model reference that
// parses (and that resolve, when not nil, accepts) and a valid alias. Errors
// match ErrInvalid and name the field.
func (s CanarySpec) Check(resolve func(ModelRef) error) error {
	if err := checkModel("model", s.Model, resolve); err != nil {
		return err
	}
	if len(s.Steps) == 0 {
		return invalid("steps: at least one step is required")
	}
	for i, w := range s.Steps {
		switch {
		case w < 1 || w > 100:
			return invalid("steps[%d]: want 1 to 100 per cent, got %d", i, w)
		case i > 0 && w <= s.Steps[i-1]:
			return invalid("steps[%d]: must be greater than steps[%d] (%d), got %d", i, i-1, s.Steps[i-1], w)
		}
	}
	if last := s.Steps[len(s.Steps)-1]; last != 100 {
		return invalid("steps: must end at 100, got %d", last)
	}
	if time.Duration(s.Interval) < MinCanaryInterval {
		return invalid("interval: at least %v, got %v", MinCanaryInterval, time.Duration(s.Interval))
	}
	a := s.Analysis
	for _, r := range []struct {
		field string
		value float64
	}{
		{"max_error_rate", a.MaxErrorRate},
		{"max_p99_latency_ms", a.MaxP99LatencyMs},
		{"min_requests", float64(a.MinRequests)},
		{"max_prediction_shift", a.MaxPredictionShift},
	} {
		if !(r.value >= 0) {
			return invalid("analysis.%s: must not be negative, got %v", r.field, r.value)
		}
	}
	if a.MaxErrorRate > 1 {
		return invalid("analysis.max_error_rate: a rate from 0 to 1, got %v", a.MaxErrorRate)
	}
	if s.PromoteAlias != "" {
		if err := registry.CheckAlias(s.PromoteAlias); err != nil {
			return invalid("promote_alias: %v", err)
		}
	}
	return nil
}

// Canary is the state of an endpoint's canary.
type Canary struct {
	Spec  CanarySpec `json:"spec"`
	State string     `json:"state"`
	// Step is the index in Spec.Steps of the step in progress.
	Step          int       `json:"step"`
	StepStartedAt time.Time `json:"step_started_at"`
	// Reason and Figures explain the last decision applied: which rule a
	// rolled-back canary broke, and the numbers it was judged on.
	Reason  string             `json:"reason,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
	// Baseline holds the variants as they were before the canary started,
	// restored when it rolls back or is aborted.
	Baseline []Variant `json:"baseline"`
}

func (c *Canary) active() bool {
	return c != nil && (c.State == CanaryRunning || c.State == CanaryPaused)
}

func (c Canary) clone() Canary {
	c.Spec.Steps = slices.Clone(c.Spec.Steps)
	c.Baseline = slices.Clone(c.Baseline)
	c.Figures = maps.Clone(c.Figures)
	return c
}

// StartCanary returns e with a canary: a variant named "canary" serving
// spec.Model at the first step's weight, the other variants sharing the rest
// in proportion to their weights (see the package doc). A finished canary's
// variant is dropped first. It is refused with ErrConflict while another
// canary is active or when a variant is already named "canary".
func StartCanary(e Endpoint, spec CanarySpec, now time.Time) (Endpoint, error) {
	if e.Canary.active() {
		return Endpoint{}, conflict("endpoint %s: a canary is already %s", e.Name, e.Canary.State)
	}
	if err := spec.Check(nil); err != nil {
		return Endpoint{}, err
	}
	n := e.clone()
	baseline := n.Policy.Variants
	if n.Canary != nil {
		baseline = slices.DeleteFunc(baseline, func(v Variant) bool { return v.Name == CanaryVariant })
	}
	if i := (Policy{Variants: baseline}).variant(CanaryVariant); i >= 0 {
		return Endpoint{}, conflict("endpoint %s: variants[%d] is already named %q; rename it to start a canary", e.Name, i, CanaryVariant)
	}
	if !slices.ContainsFunc(baseline, func(v Variant) bool { return v.Weight > 0 }) {
		return Endpoint{}, invalid("endpoint %s: no variant has a positive weight to compare the canary with", e.Name)
	}
	spec.Steps = slices.Clone(spec.Steps)
	n.Canary = &Canary{Spec: spec, State: CanaryRunning, StepStartedAt: now, Baseline: slices.Clone(baseline)}
	n.Policy.Variants = stepVariants(baseline, spec.Model, spec.Steps[0])
	return n.next(now), nil
}

// stepVariants returns the variants at a canary step: the canary gets step
// per cent, and the baseline variants share the other 100 − step in
// proportion to their weights, each getting the whole part of its quota and
// the units left over going to the largest remainders (the earlier variant
// on a tie). The weights sum to 100.
func stepVariants(baseline []Variant, model string, step int) []Variant {
	out := make([]Variant, len(baseline), len(baseline)+1)
	var total int
	for _, v := range baseline {
		total += v.Weight
	}
	share := 100 - step
	left := share
	remainders := make([]int, len(baseline))
	for i, v := range baseline {
		out[i] = v
		out[i].Weight = share * v.Weight / total
		remainders[i] = share * v.Weight % total
		left -= out[i].Weight
	}
	order := make([]int, len(baseline))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(remainders[b], remainders[a]) })
	for _, i := range order[:left] {
		out[i].Weight++
	}
	return append(out, Variant{Name: CanaryVariant, Model: model, Weight: step})
}

// Action is what a canary evaluation decided.
type Action int

// Actions, in the order Evaluate considers them.
const (
	// Hold keeps the canary at its step: the interval is not over, too few
	// canary requests came in, or the canary is not running.
	Hold Action = iota
	// Advance moves the canary to its next step.
	Advance
	// Promote gives the canary all the traffic: its last step passed.
	Promote
	// RollBack gives the canary no traffic: it broke a rule.
	RollBack
)

func (a Action) String() string {
	switch a {
	case Hold:
		return "hold"
	case Advance:
		return "advance"
	case Promote:
		return "promote"
	case RollBack:
		return "roll_back"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is the outcome of a canary evaluation: an action, why, and the
// figures it was based on.
type Decision struct {
	Action  Action
	Reason  string
	Figures map[string]float64
}

// Evaluate judges the step in progress on the canary's and the baseline's
// figures since StepStartedAt. It holds while the canary is not running,
// until the interval is over, and until the canary has MinRequests requests;
// then it rolls back if a rule is broken (the first of error rate, p99
// latency, prediction shift), and otherwise advances, or promotes after the
// last step. A rule whose figures are missing (no canary requests, no
// predictions on either side) is skipped. Prediction shift is
// |mean_canary − mean_baseline| / max(|mean_baseline|, 1e-9).
//
// Every step starts a new revision, so the Stats of the Route compiled from
// it hold exactly the figures since StepStartedAt; StatsSnapshot.CanaryFigures
// splits them into canary and baseline.
func (c *Canary) Evaluate(canary, baseline WindowFigures, now time.Time) Decision {
	if c.State != CanaryRunning {
		return Decision{Action: Hold, Reason: "canary is " + c.State}
	}
	a := c.Spec.Analysis
	if elapsed, interval := now.Sub(c.StepStartedAt), time.Duration(c.Spec.Interval); elapsed < interval {
		return Decision{Action: Hold, Reason: fmt.Sprintf("step %d of %d: %v of %v elapsed", c.Step+1, len(c.Spec.Steps), elapsed.Round(time.Millisecond), interval)}
	}
	if canary.Requests < int64(a.MinRequests) {
		return Decision{Action: Hold, Reason: fmt.Sprintf("%d canary requests < min_requests %d", canary.Requests, a.MinRequests)}
	}
	figures := map[string]float64{
		"canary_requests":   float64(canary.Requests),
		"canary_errors":     float64(canary.Errors),
		"canary_p99_ms":     canary.P99Ms,
		"baseline_requests": float64(baseline.Requests),
		"baseline_errors":   float64(baseline.Errors),
		"baseline_p99_ms":   baseline.P99Ms,
	}
	rollBack := func(format string, args ...any) Decision {
		return Decision{Action: RollBack, Reason: fmt.Sprintf(format, args...), Figures: figures}
	}
	if canary.Requests > 0 {
		rate := float64(canary.Errors) / float64(canary.Requests)
		figures["canary_error_rate"] = rate
		figures["baseline_error_rate"] = ratio(float64(baseline.Errors), float64(baseline.Requests))
		if a.MaxErrorRate > 0 && rate > a.MaxErrorRate {
			return rollBack("error rate %.3g > max_error_rate %g", rate, a.MaxErrorRate)
		}
		if a.MaxP99LatencyMs > 0 && canary.P99Ms > a.MaxP99LatencyMs {
			return rollBack("p99 latency %.4gms > max_p99_latency_ms %g", canary.P99Ms, a.MaxP99LatencyMs)
		}
	}
	if canary.Predictions > 0 && baseline.Predictions > 0 {
		shift := math.Abs(canary.PredictionMean-baseline.PredictionMean) / max(math.Abs(baseline.PredictionMean), 1e-9)
		figures["canary_prediction_mean"] = canary.PredictionMean
		figures["baseline_prediction_mean"] = baseline.PredictionMean
		figures["prediction_shift"] = shift
		if a.MaxPredictionShift > 0 && shift > a.MaxPredictionShift {
			return rollBack("prediction shift %.3g > max_prediction_shift %g", shift, a.MaxPredictionShift)
		}
	}
	if c.Step == len(c.Spec.Steps)-1 {
		return Decision{Action: Promote, Reason: fmt.Sprintf("passed all %d steps", len(c.Spec.Steps)), Figures: figures}
	}
	return Decision{Action: Advance, Reason: fmt.Sprintf("passed step %d of %d", c.Step+1, len(c.Spec.Steps)), Figures: figures}
}

// ApplyCanary returns e changed by a decision, recording its reason and
// figures in the canary:
//
//   - Hold returns e unchanged.
//   - Advance (running canary, not at its last step) sets the next step's
//     weights and restarts the interval.
//   - Promote (running or paused) leaves one variant: the canary's model at
//     weight 100, under the name of the baseline variant that had the largest
//     weight, so that the endpoint reads as before with the new model. The
//     canary is then promoted; moving Spec.PromoteAlias is the caller's part.
//   - RollBack (running or paused) restores the baseline weights and keeps
//     the canary variant at weight 0, reachable by the override header. The
//     canary is then rolled back.
//
// Other combinations are refused with ErrConflict.
func ApplyCanary(e Endpoint, d Decision, now time.Time) (Endpoint, error) {
	if e.Canary == nil {
		return Endpoint{}, conflict("endpoint %s has no canary", e.Name)
	}
	if d.Action == Hold {
		return e, nil
	}
	c := e.Canary
	switch {
	case d.Action == Advance && (c.State != CanaryRunning || c.Step+1 >= len(c.Spec.Steps)):
		return Endpoint{}, conflict("endpoint %s: cannot advance a canary that is %s at step %d of %d", e.Name, c.State, c.Step+1, len(c.Spec.Steps))
	case (d.Action == Promote || d.Action == RollBack) && !c.active():
		return Endpoint{}, conflict("endpoint %s: cannot %s a canary that is %s", e.Name, d.Action, c.State)
	case d.Action < Hold || d.Action > RollBack:
		return Endpoint{}, invalid("unknown canary action %v", d.Action)
	}
	n := e.clone()
	nc := n.Canary
	nc.Reason = d.Reason
	nc.Figures = maps.Clone(d.Figures)
	switch d.Action {
	case Advance:
		nc.Step++
		nc.StepStartedAt = now
		n.Policy.Variants = stepVariants(nc.Baseline, nc.Spec.Model, nc.Spec.Steps[nc.Step])
	case Promote:
		heaviest := slices.MaxFunc(nc.Baseline, func(a, b Variant) int { return cmp.Compare(a.Weight, b.Weight) })
		n.Policy.Variants = []Variant{{Name: heaviest.Name, Model: nc.Spec.Model, Weight: 100}}
		nc.State = CanaryPromoted
	case RollBack:
		n.Policy.Variants = append(slices.Clone(nc.Baseline), Variant{Name: CanaryVariant, Model: nc.Spec.Model})
		nc.State = CanaryRolledBack
	}
	return n.next(now), nil
}

// PromoteCanary promotes an active canary by hand; see ApplyCanary.
func PromoteCanary(e Endpoint, reason string, now time.Time) (Endpoint, error) {
	return ApplyCanary(e, Decision{Action: Promote, Reason: reason}, now)
}

// PauseCanary stops a running canary at its step, weights unchanged, until
// ResumeCanary; meanwhile SetWeights is allowed. Other states are refused
// with ErrConflict.
func PauseCanary(e Endpoint, now time.Time) (Endpoint, error) {
	return setState(e, CanaryRunning, CanaryPaused, now)
}

// ResumeCanary runs a paused canary again from its step, with a fresh
// interval. Other states are refused with ErrConflict.
func ResumeCanary(e Endpoint, now time.Time) (Endpoint, error) {
	return setState(e, CanaryPaused, CanaryRunning, now)
}

func setState(e Endpoint, from, to string, now time.Time) (Endpoint, error) {
	if e.Canary == nil || e.Canary.State != from {
		return Endpoint{}, conflict("endpoint %s has no %s canary", e.Name, from)
	}
	n := e.clone()
	n.Canary.State = to
	if to == CanaryRunning {
		n.Canary.StepStartedAt = now
	}
	return n.next(now), nil
}

// AbortCanary ends an active canary: the baseline variants get their weights
// back and the canary variant is removed. Other states are refused with
// ErrConflict.
func AbortCanary(e Endpoint, reason string, now time.Time) (Endpoint, error) {
	if !e.Canary.active() {
		return Endpoint{}, conflict("endpoint %s has no running or paused canary", e.Name)
	}
	n := e.clone()
	n.Policy.Variants = slices.Clone(n.Canary.Baseline)
	n.Canary.State = CanaryAborted
	n.Canary.Reason = reason
	n.Canary.Figures = nil
	return n.next(now), nil
}
