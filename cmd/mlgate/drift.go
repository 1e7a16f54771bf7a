package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/serving"
)

// driftCommand is `mlgate drift`: the drift monitors of a running gateway.
func driftCommand() *cobra.Command {
	return clientGroup("drift", "Watch a model's inputs and predictions for drift", `  mlgate drift put churn-inputs -f monitor.json
  mlgate drift report churn-inputs
  mlgate drift run --monitor churn-inputs --from -24h`,
		driftPut, driftList, driftReport, driftRun, driftDelete)
}

func monitorPath(name string, more ...string) string {
	p := "/v1/monitors/" + url.PathEscape(name)
	for _, m := range more {
		p += "/" + m
	}
	return p
}

// monitorReportView is GET /v1/monitors/{name}/report: the monitor's state
// and the measured quality of the model where labels exist.
type monitorReportView struct {
	drift.MonitorReport
	Performance []serving.Performance `json:"performance"`
}

// summaryWindows is how many windows before the last `drift report` sums up
// in a line each unless told otherwise.
const summaryWindows = 12

func driftReport(c *client) *cobra.Command {
	var o output
	var windows int
	cmd := &cobra.Command{
		Use:   "report MONITOR",
		Short: "Show a monitor's current and last windows, its earlier verdicts and the model's measured quality",
		Example: `  mlgate drift report churn-inputs
  mlgate drift report churn-inputs --windows -1   # every earlier window
  mlgate drift report churn-inputs -o json`,
		Args:              positional(1, 1),
		ValidArgsFunction: c.completeNames("/v1/monitors", "monitors"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r monitorReportView
			return c.get(cmd, o, monitorPath(args[0], "report"), &r, func() error { return writeMonitorReport(stdout, r, windows, time.Now()) })
		},
	}
	cmd.Flags().IntVar(&windows, "windows", summaryWindows, "how many earlier windows to sum up in a line each (-1 for all)")
	outputFlags(cmd, &o)
	return cmd
}

// writeMonitorReport writes a monitor's spec, its current window, its last
// window in full and up to earlier windows before it in a line each, and
// the model's measured quality.
func writeMonitorReport(out io.Writer, r monitorReportView, earlier int, now time.Time) error {
	writeMonitorSpec(out, r.Spec, r.Model)
	line := labelled(out)
	if r.Status != "" && r.Status != drift.StatusRunning {
		line("status", "%s %s", r.Status, r.Error)
		return nil
	}
	if r.LastAlert.IsZero() {
		line("last alert", "never")
	} else {
		line("last alert", "%s (%s ago)", r.LastAlert.Format(time.RFC3339), now.Sub(r.LastAlert).Round(time.Second))
	}
	fmt.Fprintln(out)

	cur := r.Current
	fmt.Fprintf(out, "current window since %s (%s ago): %s\n", cur.Start.Format(time.RFC3339),
		now.Sub(cur.Start).Round(time.Second), plural(int(cur.Samples), "sample", "samples"))
	if len(cur.Features) > 0 {
		fmt.Fprintf(out, "  features     %s\n", countList(cur.Features))
	}
	if len(cur.Predictions) > 0 {
		fmt.Fprintf(out, "  predictions  %s\n", countList(cur.Predictions))
	}
	fmt.Fprintln(out)

	if len(r.History) == 0 {
		fmt.Fprintf(out, "no window closed yet: the first closes %s after the current one opened, or judge a past range with `mlgate drift run`\n",
			time.Duration(r.Spec.Window))
	} else {
		last := r.History[len(r.History)-1]
		if err := writeWindow(out, "last window", last, r.Spec.MinSamples, true); err != nil {
			return err
		}
		before := r.History[:len(r.History)-1]
		if len(before) > 0 {
			shown := before
			if earlier >= 0 && len(shown) > earlier {
				shown = shown[len(shown)-earlier:]
			}
			if len(shown) > 0 {
				fmt.Fprintln(out)
				fmt.Fprintln(out, "earlier windows, newest first:")
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "  WINDOW\tSAMPLES\tDRIFTED")
				for i := len(shown) - 1; i >= 0; i-- {
					h := shown[i]
					fmt.Fprintf(w, "  %s\t%d\t%s\n", windowSpan(h.Start, h.End), h.Samples, driftedBrief(h))
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if n := len(before) - len(shown); n > 0 {
				fmt.Fprintf(out, "  ... and %s (--windows -1 or --json for all)\n", plural(n, "earlier window", "earlier windows"))
			}
		}
	}
	fmt.Fprintln(out)
	return writePerformance(out, r.Performance)
}

// labelled returns a printer of lines with a label in a column of its own.
func labelled(out io.Writer) func(label, format string, args ...any) {
	return func(label, format string, args ...any) {
		fmt.Fprintf(out, "%-12s"+format+"\n", append([]any{label}, args...)...)
	}
}

// writeMonitorSpec writes what a monitor watches, its baseline, window and
// rules.
func writeMonitorSpec(out io.Writer, s drift.MonitorSpec, model drift.ModelInfo) {
	line := labelled(out)
	line("monitor", "%s", s.Name)
	line("watches", "%s", watches(s))
	baseline := s.Baseline
	switch {
	case s.Baseline == drift.BaselineModel && model.Name != "":
		baseline = fmt.Sprintf("registered with model %s version %d", model.Name, model.Version)
	case s.Baseline == drift.BaselineModel:
		baseline = "registered with the model"
	default:
		if start, end, ok := s.BaselineRange(); ok {
			baseline = fmt.Sprintf("inference table from %s to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
			if model.Name != "" {
				baseline += fmt.Sprintf(" (model %s version %d)", model.Name, model.Version)
			}
		}
	}
	line("baseline", "%s", baseline)
	line("window", "%s, judged from %s per series, alerts at most every %s",
		time.Duration(s.Window), plural(s.MinSamples, "value", "values"), time.Duration(s.Cooldown))
	line("thresholds", "%s", thresholdList(s.Thresholds))
	if s.Webhook.URL != "" {
		signed := ""
		if s.Webhook.Secret != "" {
			signed = " (signed)"
		}
		line("webhook", "%s%s", s.Webhook.URL, signed)
	} else {
		line("webhook", "none")
	}
}

// watches says what a monitor watches: the endpoint or model, its features
// and whether its predictions too.
func watches(s drift.MonitorSpec) string {
	what := "endpoint " + s.Endpoint
	if s.Model != "" {
		what = "model " + s.Model
	}
	features := "every feature of the baseline"
	if len(s.Features) > 0 {
		features = "features " + strings.Join(s.Features, ", ")
	}
	if s.Predictions {
		return what + ": " + features + " and the predictions"
	}
	return what + ": " + features
}

// thresholdList writes the rules that are on, as what breaks them.
func thresholdList(t drift.Thresholds) string {
	var rules []string
	if t.PSI > 0 {
		rules = append(rules, fmt.Sprintf("psi > %g", t.PSI))
	}
	if t.KSP > 0 {
		rules = append(rules, fmt.Sprintf("ks_p < %g", t.KSP))
	}
	if t.JS > 0 {
		rules = append(rules, fmt.Sprintf("js > %g", t.JS))
	}
	if t.Chi2P > 0 {
		rules = append(rules, fmt.Sprintf("chi2_p < %g", t.Chi2P))
	}
	if len(rules) == 0 {
		return "none"
	}
	return "drifted when " + strings.Join(rules, " or ")
}

// countList writes counts by name, sorted by name.
func countList(counts map[string]int64) string {
	names := slices.Sorted(maps.Keys(counts))
	for i, n := range names {
		names[i] = fmt.Sprintf("%s %d", n, counts[n])
	}
	return strings.Join(names, ", ")
}

// windowSpan writes a window's start and end, the end's date left out when
// it is the start's.
func windowSpan(start, end time.Time) string {
	if end.Location().String() == start.Location().String() && end.Format(time.DateOnly) == start.Format(time.DateOnly) {
		return start.Format(time.RFC3339) + " – " + end.Format("15:04:05Z07:00")
	}
	return start.Format(time.RFC3339) + " – " + end.Format(time.RFC3339)
}

// driftedBrief is "yes (alerted): x psi, y ks_p", "yes: ..." or "no".
func driftedBrief(w drift.WindowReport) string {
	if !w.Drifted {
		return "no"
	}
	var broken []string
	for _, sr := range seriesOf(w) {
		for _, m := range sr.Metrics {
			if m.Drifted {
				broken = append(broken, sr.Name+" "+m.Metric)
			}
		}
	}
	head := "yes"
	if w.Alerted {
		head += " (alerted)"
	}
	if len(broken) == 0 {
		return head
	}
	const most = 4
	if len(broken) > most {
		broken = append(broken[:most], fmt.Sprintf("%d more", len(broken)-most))
	}
	return head + ": " + strings.Join(broken, ", ")
}

// seriesOf returns a window's features, then its predictions named
// "prediction:NAME", as baselines from files name them.
func seriesOf(w drift.WindowReport) []drift.SeriesReport {
	out := slices.Clone(w.Features)
	for _, p := range w.Predictions {
		p.Name = predictionPrefix + p.Name
		out = append(out, p)
	}
	return out
}

// writeWindow writes a window's verdict and a row per series and rule. A
// live window says whether its drift raised an alert; a batch one (drift
// run) raises none.
func writeWindow(out io.Writer, title string, r drift.WindowReport, minSamples int, live bool) error {
	verdict := "no drift"
	switch {
	case r.Drifted && !live:
		verdict = "DRIFTED"
	case r.Drifted && r.Alerted:
		verdict = "DRIFTED, alert sent"
	case r.Drifted:
		verdict = "DRIFTED (no alert: within the cooldown)"
	}
	fmt.Fprintf(out, "%s %s: %s, %s\n\n", title, windowSpan(r.Start, r.End), plural(int(r.Samples), "sample", "samples"), verdict)
	series := seriesOf(r)
	if len(series) == 0 {
		fmt.Fprintln(out, "no features or predictions watched")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FEATURE\tMETRIC\tVALUE\tTHRESHOLD\tDRIFTED\tSAMPLES")
	for _, sr := range series {
		samples := strconv.FormatInt(sr.Count, 10)
		if sr.Missing > 0 {
			samples += fmt.Sprintf(" (%d missing)", sr.Missing)
		}
		if sr.Other > 0 {
			samples += fmt.Sprintf(" (%d other)", sr.Other)
		}
		if len(sr.Metrics) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\tno values\t%s\n", sr.Name, samples)
			continue
		}
		for _, m := range sr.Metrics {
			drifted := "no"
			switch {
			case m.Drifted:
				drifted = "YES"
			case !sr.Judged && minSamples > 0:
				drifted = fmt.Sprintf("no (under %d)", minSamples)
			case !sr.Judged:
				drifted = "no (too few)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", sr.Name, m.Metric, strconv.FormatFloat(m.Value, 'g', 4, 64),
				thresholdOf(m), drifted, samples)
		}
	}
	return w.Flush()
}

// thresholdOf writes a rule's threshold with the side that breaks it.
func thresholdOf(m drift.MetricResult) string {
	switch m.Metric {
	case drift.MetricKSP, drift.MetricChi2P:
		return "< " + strconv.FormatFloat(m.Threshold, 'g', -1, 64)
	}
	return "> " + strconv.FormatFloat(m.Threshold, 'g', -1, 64)
}

// writePerformance writes the model's measured quality per endpoint variant
// and model version.
func writePerformance(out io.Writer, ps []serving.Performance) error {
	if len(ps) == 0 {
		fmt.Fprintln(out, "performance: no labelled predictions (POST /v1/labels to add ground truth)")
		return nil
	}
	fmt.Fprintln(out, "performance on labelled predictions:")
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENDPOINT\tVARIANT\tMODEL\tLABELLED\tACCURACY\tAUC\tMAE\tRMSE")
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	metric := func(f *float64) string {
		if f == nil {
			return "-"
		}
		return strconv.FormatFloat(*f, 'f', 4, 64)
	}
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\t%s/%d\t%d\t%s\t%s\t%s\t%s\n", orDash(p.Endpoint), orDash(p.Variant), p.Model, p.Version, p.Labelled,
			metric(p.Accuracy), metric(p.AUC), metric(p.MAE), metric(p.RMSE))
	}
	return w.Flush()
}

// parseWhen reads the time of cmd's flag flagName: RFC 3339, "now", or a
// negative duration from now such as -15m.
func parseWhen(cmd *cobra.Command, flagName, s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s)
		if err == nil {
			return now.Add(d), nil
		}
	default:
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErrorf(cmd, "--%s %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z, now, or a time ago such as -15m", flagName, s)
}

func driftRun(c *client) *cobra.Command {
	var o output
	var monitor, from, to string
	cmd := &cobra.Command{
		Use:   "run --monitor MONITOR --from TIME",
		Short: "Judge a past range of the inference table with a monitor's spec and baseline",
		Long: `Judge a past range of the inference table with a monitor's spec and baseline,
as one window. TIME is an RFC 3339 time, now, or a time ago such as -1h.`,
		Example: `  mlgate drift run --monitor churn-inputs --from -1h
  mlgate drift run --monitor churn-inputs --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z -o json`,
		Args: positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if monitor == "" || from == "" {
				return usageErrorf(cmd, "--monitor and --from are required, e.g. drift run --monitor churn --from -1h")
			}
			now := time.Now()
			start, err := parseWhen(cmd, "from", from, now)
			if err != nil {
				return err
			}
			end, err := parseWhen(cmd, "to", to, now)
			if err != nil {
				return err
			}
			if !start.Before(end) {
				return usageErrorf(cmd, "--from %s is not before --to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
			}
			body := map[string]string{"from": start.Format(time.RFC3339Nano), "to": end.Format(time.RFC3339Nano)}
			var raw json.RawMessage
			if err := c.doJSON(http.MethodPost, monitorPath(monitor, "run"), body, &raw); err != nil {
				return err
			}
			var r drift.WindowReport
			return o.print(cmd, raw, &r, func() error { return writeWindow(stdout, "monitor "+monitor+", window", r, 0, false) })
		},
	}
	cmd.Flags().StringVar(&monitor, "monitor", "", "the monitor `name` whose spec and baseline judge the range (required)")
	cmd.Flags().StringVar(&from, "from", "", "start of the range of the inference table: RFC 3339, or a time ago such as -1h (required)")
	cmd.Flags().StringVar(&to, "to", "now", "end of the range: RFC 3339, now, or a time ago such as -15m")
	cmd.RegisterFlagCompletionFunc("monitor", c.completeNames("/v1/monitors", "monitors"))
	outputFlags(cmd, &o)
	return cmd
}

func driftPut(c *client) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put MONITOR -f MONITOR.json",
		Short: "Create or change a drift monitor from its spec",
		Example: `  mlgate drift put churn-inputs -f monitor.json
  mlgate drift put churn-inputs -f - < monitor.json`,
		Args:              positional(1, 1),
		ValidArgsFunction: c.completeNames("/v1/monitors", "monitors"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErrorf(cmd, "-f FILE is required: the monitor spec as JSON")
			}
			var body []byte
			var err error
			if file == "-" {
				body, err = io.ReadAll(os.Stdin)
			} else {
				body, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("drift put: %w", err)
			}
			if !json.Valid(body) {
				return fmt.Errorf("drift put: %s is not valid JSON", file)
			}
			var r drift.MonitorReport
			if err := c.do(http.MethodPut, monitorPath(args[0]), "application/json", bytes.NewReader(body), &r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "monitor %s saved\n\n", r.Spec.Name)
			writeMonitorSpec(stdout, r.Spec, r.Model)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "monitor spec JSON `file`, - for standard input (required)")
	return cmd
}

func driftList(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the drift monitors with what they watch and their rules",
		Example: "  mlgate drift list\n  mlgate drift list -o json",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Monitors []listedMonitor `json:"monitors"`
			}
			return c.get(cmd, o, "/v1/monitors", &out, func() error { return writeMonitors(out.Monitors) })
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

// writeMonitors writes monitors as a table, sorted by name, then the error
// of each that failed.
func writeMonitors(monitors []listedMonitor) error {
	if len(monitors) == 0 {
		fmt.Fprintln(stdout, "no monitors")
		return nil
	}
	slices.SortFunc(monitors, func(a, b listedMonitor) int { return strings.Compare(a.Name, b.Name) })
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tWATCHES\tBASELINE\tWINDOW\tMIN SAMPLES\tTHRESHOLDS")
	var failed []listedMonitor
	for _, s := range monitors {
		if s.Error != "" {
			failed = append(failed, s)
		}
		what := "endpoint " + s.Endpoint
		if s.Model != "" {
			what = "model " + s.Model
		}
		if s.Predictions {
			what += " +predictions"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Status, what, s.Baseline, time.Duration(s.Window), s.MinSamples,
			strings.TrimPrefix(thresholdList(s.Thresholds), "drifted when "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, s := range failed {
		fmt.Fprintf(stdout, "%s: %s\n", s.Name, s.Error)
	}
	return nil
}

// listedMonitor is a monitor as GET /v1/monitors lists it.
type listedMonitor struct {
	drift.MonitorSpec
	Status string `json:"status"`
	Error  string `json:"error"`
}

func driftDelete(c *client) *cobra.Command {
	return &cobra.Command{
		Use:               "delete MONITOR",
		Short:             "Delete a drift monitor",
		Example:           "  mlgate drift delete churn-inputs",
		Args:              positional(1, 1),
		ValidArgsFunction: c.completeNames("/v1/monitors", "monitors"),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := c.do(http.MethodDelete, monitorPath(args[0]), "", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "monitor %s deleted\n", args[0])
			return nil
		},
	}
}
