package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlgate/mlgate/router"
)

// endpointView is an endpoint as GET /v1/endpoints/{e} shows it: the
// endpoint and its live stats.
type endpointView struct {
	router.Endpoint
	Stats router.StatsSnapshot `json:"stats"`
	// Replicas are each replica's counts, in a fleet.
	Replicas map[string]replicaCounts `json:"replicas"`
	// Partial says why the stats are one replica's, when the fleet's could
	// not be read.
	Partial string `json:"partial"`
}

// replicaCounts are one replica's requests and errors of the revision.
type replicaCounts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// trafficCommand is `mlgate traffic`: the endpoints of a running gateway.
func trafficCommand() *cobra.Command {
	return clientGroup("traffic", "Split, canary and inspect an endpoint's traffic", `  mlgate traffic show churn
  mlgate traffic set churn control=50 treatment=50
  mlgate traffic canary churn --model churn/3 --steps 5,25,50,100 --interval 30s`,
		trafficShow, trafficSet, trafficCanary, trafficHistory)
}

func endpointPath(name string, more ...string) string {
	p := "/v1/endpoints/" + url.PathEscape(name)
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// printJSON writes raw JSON indented.
func printJSON(raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	fmt.Fprintln(stdout, buf.String())
	return nil
}

func trafficShow(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "show [ENDPOINT]",
		Short: "Show an endpoint's variants, live stats, shadow and canary, or list the endpoints",
		Example: `  mlgate traffic show          # every endpoint, a line each
  mlgate traffic show churn    # variants, weights, shares, errors, p50/p99, SRM, shadow, canary
  mlgate traffic show churn -o json`,
		Args:              positional(0, 1),
		ValidArgsFunction: c.completeNames("/v1/endpoints", "endpoints"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return trafficList(cmd, c, o)
			}
			var e endpointView
			return c.get(cmd, o, endpointPath(args[0]), &e, func() error { return writeEndpoint(stdout, e) })
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

func trafficList(cmd *cobra.Command, c *client, o output) error {
	var out struct {
		Endpoints []endpointView `json:"endpoints"`
	}
	return c.get(cmd, o, "/v1/endpoints", &out, func() error {
		if len(out.Endpoints) == 0 {
			fmt.Fprintln(stdout, "no endpoints")
			return nil
		}
		sort.Slice(out.Endpoints, func(i, j int) bool { return out.Endpoints[i].Name < out.Endpoints[j].Name })
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tREVISION\tVARIANTS\tREQUESTS\tCANARY")
		for _, e := range out.Endpoints {
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", e.Name, e.Revision, weightList(e.Policy.Variants), e.Stats.Requests, canaryBrief(e.Canary))
		}
		return w.Flush()
	})
}

// writeEndpoint writes an endpoint as a table of its variants followed by
// its revision, sticky entity, shadow, SRM and canary.
func writeEndpoint(out io.Writer, e endpointView) error {
	fmt.Fprintf(out, "endpoint %s\n\n", e.Name)
	stats := make(map[string]router.VariantStats, len(e.Stats.Variants))
	for _, v := range e.Stats.Variants {
		stats[v.Name] = v
	}
	total := weightTotal(e.Policy.Variants)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VARIANT\tMODEL\tWEIGHT\tSHARE\tREQUESTS\tERRORS\tP50\tP99")
	for _, v := range e.Policy.Variants {
		s := stats[v.Name]
		share, errs, p50, p99 := "-", "0", "-", "-"
		if s.Requests > 0 {
			share = percent(s.Share)
			errs = fmt.Sprintf("%d (%s)", s.Errors, percent(s.ErrorRate))
			p50, p99 = millis(s.P50Ms), millis(s.P99Ms)
		}
		weight := strconv.Itoa(v.Weight)
		if total != 100 {
			// Weights are relative; say what they come to when that is not
			// plain.
			weight += " (" + percent(ratioOf(float64(v.Weight), float64(total))) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Name, v.Model, weight, share, s.Requests, errs, p50, p99)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)

	line := func(label, format string, args ...any) {
		fmt.Fprintf(out, "%-10s"+format+"\n", append([]any{label}, args...)...)
	}
	line("revision", "%d, updated %s", e.Revision, e.UpdatedAt.Format(time.RFC3339))
	if e.Policy.Sticky != nil {
		line("sticky", "entity %s", e.Policy.Sticky.Entity)
	} else {
		line("sticky", "none")
	}
	if sh := e.Policy.Shadow; sh != nil {
		st := e.Stats.Shadow
		agreement := "agreement -"
		if n := st.Agree + st.Disagree; n > 0 {
			agreement = fmt.Sprintf("agreement %s (%d of %d)", percent(st.AgreementRate), st.Agree, n)
		}
		diff := "mean abs diff -"
		if st.Diffs > 0 {
			diff = fmt.Sprintf("mean abs diff %.4g (%d compared)", st.MeanAbsDiff, st.Diffs)
		}
		line("shadow", "%s at %g%% of requests; %s, %s, dropped %d, failed %d", sh.Model, sh.Percent, agreement, diff, st.Dropped, st.Failed)
	} else {
		line("shadow", "none")
	}
	switch s := e.Stats; {
	case s.SRM:
		line("srm", "p-value %.3g over %d requests: MISMATCH", s.SRMPValue, s.Requests)
		fmt.Fprintf(out, "\n  *** SAMPLE RATIO MISMATCH: the requests per variant do not match the weights (p = %.3g < %g).\n", s.SRMPValue, router.SRMAlpha)
		fmt.Fprintln(out, "  *** The split is broken; do not trust a comparison of these variants until the cause is found.")
		fmt.Fprintln(out)
	case s.Requests < router.SRMMinRequests:
		line("srm", "p-value %.3g over %d requests: too few to judge (needs %d)", s.SRMPValue, s.Requests, router.SRMMinRequests)
	default:
		line("srm", "p-value %.3g over %d requests: ok", s.SRMPValue, s.Requests)
	}
	if e.Partial != "" {
		line("partial", "%s", e.Partial)
	}
	if len(e.Replicas) > 0 {
		ids := slices.Sorted(maps.Keys(e.Replicas))
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s %d (%d errors)", id, e.Replicas[id].Requests, e.Replicas[id].Errors)
		}
		line("replicas", "%s", strings.Join(parts, ", "))
	}
	writeCanary(out, e.Canary, line)
	return nil
}

func writeCanary(out io.Writer, c *router.Canary, line func(label, format string, args ...any)) {
	if c == nil {
		line("canary", "none")
		return
	}
	sp := c.Spec
	started := c.StepStartedAt.Format(time.RFC3339)
	if c.State == router.CanaryRunning {
		started += fmt.Sprintf(" (%s ago)", time.Since(c.StepStartedAt).Round(time.Second))
	}
	line("canary", "%s %s, step %d of %d at %d%%, interval %v, step started %s",
		sp.Model, strings.ReplaceAll(c.State, "_", " "), c.Step+1, len(sp.Steps), stepWeight(c), time.Duration(sp.Interval), started)
	promote := sp.PromoteAlias
	if promote == "" {
		promote = "none"
	}
	line("", "steps %s, promote alias %s", intList(sp.Steps), promote)
	var rules []string
	a := sp.Analysis
	if a.MaxErrorRate > 0 {
		rules = append(rules, fmt.Sprintf("max_error_rate %g", a.MaxErrorRate))
	}
	if a.MaxP99LatencyMs > 0 {
		rules = append(rules, fmt.Sprintf("max_p99_latency_ms %g", a.MaxP99LatencyMs))
	}
	if a.MinRequests > 0 {
		rules = append(rules, fmt.Sprintf("min_requests %d", a.MinRequests))
	}
	if a.MaxPredictionShift > 0 {
		rules = append(rules, fmt.Sprintf("max_prediction_shift %g", a.MaxPredictionShift))
	}
	if len(rules) == 0 {
		rules = append(rules, "none")
	}
	line("", "rules %s", strings.Join(rules, ", "))
	if c.Reason != "" {
		line("", "reason %s", c.Reason)
	}
	if len(c.Figures) > 0 {
		keys := make([]string, 0, len(c.Figures))
		for k := range c.Figures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = fmt.Sprintf("%s=%.4g", k, c.Figures[k])
		}
		line("", "figures %s", strings.Join(keys, " "))
	}
}

// stepWeight is the canary's weight (per cent) at its current step.
func stepWeight(c *router.Canary) int {
	if c.Step >= 0 && c.Step < len(c.Spec.Steps) {
		return c.Spec.Steps[c.Step]
	}
	return 0
}

// canaryBrief writes a canary as state@weight%, or "-".
func canaryBrief(c *router.Canary) string {
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("%s@%d%%", c.State, stepWeight(c))
}

func weightList(vs []router.Variant) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s=%d", v.Name, v.Weight)
	}
	return strings.Join(parts, ",")
}

func intList(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// millis writes a latency with two or three significant digits.
func millis(ms float64) string {
	prec := 0
	switch {
	case ms < 10:
		prec = 2
	case ms < 100:
		prec = 1
	}
	return strconv.FormatFloat(ms, 'f', prec, 64) + "ms"
}

func weightTotal(vs []router.Variant) int {
	total := 0
	for _, v := range vs {
		total += v.Weight
	}
	return total
}

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// parseWeights parses NAME=WEIGHT pairs.
func parseWeights(pairs []string) (map[string]int, error) {
	weights := make(map[string]int, len(pairs))
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("bad pair %q: want NAME=WEIGHT, e.g. control=50", p)
		}
		w, err := strconv.Atoi(value)
		if err != nil {
			return nil, fmt.Errorf("bad pair %q: weight %q is not a whole number", p, value)
		}
		if _, dup := weights[name]; dup {
			return nil, fmt.Errorf("variant %q is given twice", name)
		}
		weights[name] = w
	}
	return weights, nil
}

func trafficSet(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "set ENDPOINT VARIANT=WEIGHT...",
		Short: "Set the weights of an endpoint's variants",
		Long: `Set the weights of an endpoint's variants (PATCH /v1/endpoints/ENDPOINT/traffic,
audited). Weights are relative; variants not named keep theirs.`,
		Example:           "  mlgate traffic set churn control=50 treatment=50\n  mlgate traffic set churn control=100 treatment=0",
		Args:              positional(2, -1),
		ValidArgsFunction: c.completeNames("/v1/endpoints", "endpoints"),
		RunE: func(cmd *cobra.Command, args []string) error {
			weights, err := parseWeights(args[1:])
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			var raw json.RawMessage
			if err := c.doJSON(http.MethodPatch, endpointPath(args[0], "traffic"), map[string]any{"weights": weights}, &raw); err != nil {
				return err
			}
			var e router.Endpoint
			return o.print(cmd, raw, &e, func() error {
				fmt.Fprintf(stdout, "%s: weights set, revision %d\n\n", e.Name, e.Revision)
				return writeWeights(stdout, e.Policy.Variants)
			})
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

// writeWeights writes variants as a table of their weights and the share of
// the traffic each weight asks for.
func writeWeights(out io.Writer, vs []router.Variant) error {
	total := weightTotal(vs)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VARIANT\tMODEL\tWEIGHT\tTRAFFIC")
	for _, v := range vs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", v.Name, v.Model, v.Weight, percent(ratioOf(float64(v.Weight), float64(total))))
	}
	return w.Flush()
}

var canaryCommands = []string{"pause", "resume", "promote", "abort"}

// canaryFlags are the flags of `traffic canary`.
type canaryFlags struct {
	o                      output
	model, steps, interval string
	spec                   router.CanarySpec
	force                  bool
	// start holds the flags that start a canary, and only those.
	start *pflag.FlagSet
}

func trafficCanary(c *client) *cobra.Command {
	f := &canaryFlags{start: pflag.NewFlagSet("start", pflag.ContinueOnError)}
	cmd := &cobra.Command{
		Use:   "canary ENDPOINT [pause|resume|promote|abort]",
		Short: "Start a canary of a model on an endpoint, or pause, resume, promote or abort it",
		Long: `Start a canary of a model on an endpoint: its weight goes up step by step,
each step judged by the analysis rules, rolled back when one breaks and
promoted at 100%. Or pause, resume, promote or abort the running one.`,
		Example: `  mlgate traffic canary churn --model churn/3 --steps 5,25,50,100 --interval 30s \
      --max-error-rate 0.01 --max-p99-ms 50 --min-requests 200
  mlgate traffic canary churn pause
  mlgate traffic canary churn promote --force`,
		Args: positional(1, 2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return canaryCommands, cobra.ShellCompDirectiveNoFileComp
			}
			return c.completeNames("/v1/endpoints", "endpoints")(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return f.act(cmd, c, args[0], args[1])
			}
			return f.begin(cmd, c, args[0])
		},
	}
	s := f.start
	s.StringVar(&f.model, "model", "", "model `ref` to try: name/version, name@alias or name (required to start)")
	s.StringVar(&f.steps, "steps", "", "canary weights in per cent, step by step, ending at 100: a `list` such as 5,25,50,100 (required to start)")
	s.StringVar(&f.interval, "interval", "", "how long each step lasts, a `duration` such as 30s or 5m (required to start)")
	s.Float64Var(&f.spec.Analysis.MaxErrorRate, "max-error-rate", 0, "roll back above this canary error `rate` (0 to 1; 0 is off)")
	s.Float64Var(&f.spec.Analysis.MaxP99LatencyMs, "max-p99-ms", 0, "roll back above this canary p99 latency in `ms` (0 is off)")
	s.IntVar(&f.spec.Analysis.MinRequests, "min-requests", 0, "canary requests a step needs before it is judged")
	s.Float64Var(&f.spec.Analysis.MaxPredictionShift, "max-prediction-shift", 0, "roll back above this relative shift of the mean prediction (0 is off)")
	s.StringVar(&f.spec.PromoteAlias, "promote-alias", router.DefaultPromoteAlias, "`alias` to move to the model once promoted (\"\" moves none)")
	cmd.Flags().AddFlagSet(s)
	cmd.Flags().BoolVar(&f.force, "force", false, "promote: past the protection of the promote alias (admin only; audited as forced)")
	outputFlags(cmd, &f.o)
	return cmd
}

// act pauses, resumes, promotes or aborts the canary of endpoint.
func (f *canaryFlags) act(cmd *cobra.Command, c *client, endpoint, action string) error {
	if !slices.Contains(canaryCommands, action) {
		return usageErrorf(cmd, "unknown command %q (want %s, or flags to start one)", action, strings.Join(canaryCommands, ", "))
	}
	var set []string
	f.start.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed {
			set = append(set, "--"+fl.Name)
		}
	})
	if f.force && action != "promote" {
		set = append(set, "--force")
	}
	if len(set) > 0 {
		return usageErrorf(cmd, "%s only apply when starting a canary (--force only to promote)", strings.Join(set, ", "))
	}
	var raw json.RawMessage
	path := endpointPath(endpoint, "canary", action)
	send := func() error { return c.do(http.MethodPost, path, "", nil, &raw) }
	if f.force {
		send = func() error { return c.doJSON(http.MethodPost, path, map[string]bool{"force": true}, &raw) }
	}
	if err := send(); err != nil {
		return err
	}
	return f.print(cmd, raw, func(e router.Endpoint) string {
		state := "none"
		if e.Canary != nil {
			state = strings.ReplaceAll(e.Canary.State, "_", " ")
		}
		return fmt.Sprintf("%s: canary %s, revision %d", e.Name, state, e.Revision)
	})
}

// begin starts a canary on endpoint.
func (f *canaryFlags) begin(cmd *cobra.Command, c *client, endpoint string) error {
	var missing []string
	for _, fl := range []struct{ name, value string }{{"--model", f.model}, {"--steps", f.steps}, {"--interval", f.interval}} {
		if fl.value == "" {
			missing = append(missing, fl.name)
		}
	}
	if len(missing) > 0 {
		return usageErrorf(cmd, "%s required to start a canary (or give pause, resume, promote or abort)", strings.Join(missing, ", "))
	}
	spec := f.spec
	spec.Model = f.model
	for _, s := range strings.Split(f.steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")))
		if err != nil {
			return usageErrorf(cmd, "--steps: %q is not a whole number of per cent", s)
		}
		spec.Steps = append(spec.Steps, n)
	}
	d, err := time.ParseDuration(f.interval)
	if err != nil {
		return usageErrorf(cmd, "--interval %q: want a duration such as 30s or 5m", f.interval)
	}
	spec.Interval = router.Duration(d)
	var raw json.RawMessage
	if err := c.doJSON(http.MethodPost, endpointPath(endpoint, "canary"), spec, &raw); err != nil {
		return err
	}
	return f.print(cmd, raw, func(e router.Endpoint) string {
		step := spec.Steps[0]
		if e.Canary != nil {
			step = stepWeight(e.Canary)
		}
		return fmt.Sprintf("%s: canary %s started, step 1 of %d at %d%%, every %v, revision %d", e.Name, spec.Model, len(spec.Steps), step, d, e.Revision)
	})
}

// print writes raw, the endpoint as the gateway answered, as -o says: for
// a table, the line head makes of it and the weights.
func (f *canaryFlags) print(cmd *cobra.Command, raw json.RawMessage, head func(router.Endpoint) string) error {
	var e router.Endpoint
	return f.o.print(cmd, raw, &e, func() error {
		fmt.Fprintf(stdout, "%s\n\n", head(e))
		return writeWeights(stdout, e.Policy.Variants)
	})
}

func trafficHistory(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:               "history ENDPOINT",
		Short:             "List the revisions of an endpoint's traffic policy: who changed what, and when",
		Example:           "  mlgate traffic history churn\n  mlgate traffic history churn -o json",
		Args:              positional(1, 1),
		ValidArgsFunction: c.completeNames("/v1/endpoints", "endpoints"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h struct {
				Revisions []router.Revision `json:"revisions"`
			}
			return c.get(cmd, o, endpointPath(args[0], "history"), &h, func() error {
				w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "REVISION\tTIME\tACTOR\tACTION\tWEIGHTS\tCANARY")
				for _, r := range h.Revisions {
					actor := r.Actor
					if actor == "" {
						actor = "-"
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Revision, r.Time.Format(time.RFC3339), actor, r.Action, weightList(r.Policy.Variants), canaryBrief(r.Canary))
				}
				return w.Flush()
			})
		},
	}
	outputFlags(cmd, &o)
	return cmd
}
