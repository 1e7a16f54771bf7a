package serving

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/serving/onnx"
	"github.com/mlgate/mlgate/serving/tables"
	"github.com/mlgate/mlgate/serving/tables/query"
)

// A prediction reaches drift monitors as one observation per entity row:
// its features by name ("view:feature" for a feature spec, else the input's
// name, with "[j]" for column j of an input of more than one dimension) and
// its outputs named the same way.

// series is one entity row's named values.
type series struct {
	features, predictions map[string]any
}

// feedDrift gives the monitors watching a served prediction its rows.
func (s *Server) feedDrift(o *observation) {
	if s.drift == nil || o.err != nil || o.shadow || o.p == nil {
		return
	}
	var endpoint string
	if o.route != nil {
		endpoint = o.route.Endpoint()
	}
	byEndpoint, byModel := s.drift.Watching(endpoint, o.p.Version.Name)
	if len(byEndpoint)+len(byModel) == 0 {
		return
	}
	for _, row := range predictionSeries(o.p) {
		for _, m := range byEndpoint {
			m.Observe(row.features, row.predictions)
		}
		for _, m := range byModel {
			m.Observe(row.features, row.predictions)
		}
	}
}

// predictionSeries splits a prediction into its entity rows.
func predictionSeries(p *prediction) []series {
	n := 0
	if len(p.outputs) > 0 && len(p.outputs[0].Shape) > 0 {
		n = int(p.outputs[0].Shape[0])
	}
	rows := make([]series, n)
	for i := range rows {
		rows[i] = series{features: map[string]any{}, predictions: map[string]any{}}
	}
	if a := p.asm; a != nil {
		for j, ref := range a.Refs {
			for i := range min(n, len(a.Used[j])) {
				rows[i].features[ref] = a.Used[j][i].JSON()
			}
		}
	} else {
		for _, t := range p.inputs {
			spread(rows, t, func(r series) map[string]any { return r.features })
		}
	}
	for _, t := range p.outputs {
		spread(rows, t, func(r series) map[string]any { return r.predictions })
	}
	return rows
}

// spread puts row i of a tensor into rows[i], named as the package comment
// says.
func spread(rows []series, t onnx.Tensor, into func(series) map[string]any) {
	if len(t.Shape) == 0 || int(t.Shape[0]) != len(rows) || len(rows) == 0 {
		return
	}
	values := elements(t.Data)
	if values == nil {
		return
	}
	width := len(values) / len(rows)
	for i, r := range rows {
		m := into(r)
		if len(t.Shape) == 1 {
			m[t.Name] = values[i]
			continue
		}
		for j := range width {
			m[t.Name+"["+strconv.Itoa(j)+"]"] = values[i*width+j]
		}
	}
}

// elements returns a tensor's values as float64, string or bool, or nil for
// data that is not a tensor (the maps of a ZipMap output).
func elements(data any) []any {
	switch d := data.(type) {
	case []float32:
		return convert(d, func(v float32) any { return float64(v) })
	case []float64:
		return convert(d, func(v float64) any { return v })
	case []int64:
		return convert(d, func(v int64) any { return float64(v) })
	case []int32:
		return convert(d, func(v int32) any { return float64(v) })
	case []int16:
		return convert(d, func(v int16) any { return float64(v) })
	case []int8:
		return convert(d, func(v int8) any { return float64(v) })
	case []uint64:
		return convert(d, func(v uint64) any { return float64(v) })
	case []uint32:
		return convert(d, func(v uint32) any { return float64(v) })
	case []uint16:
		return convert(d, func(v uint16) any { return float64(v) })
	case []uint8:
		return convert(d, func(v uint8) any { return float64(v) })
	case []bool:
		return convert(d, func(v bool) any { return v })
	case []string:
		return convert(d, func(v string) any { return v })
	}
	return nil
}

func convert[T any](s []T, f func(T) any) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// DriftBaselines finds monitors' baselines: the one registered with the
// model version a monitor watches (an endpoint's heaviest variant), or one
// built from a time range of the complete files of the inference table in
// tablesDir (see query.Baseline).
func DriftBaselines(catalog *Catalog, routes func(string) (model, version string, ok bool), tablesDir string) drift.BaselineSource {
	return func(ctx context.Context, spec drift.MonitorSpec) (*drift.Baseline, drift.ModelInfo, error) {
		model, version := spec.Model, ""
		if spec.Endpoint != "" {
			var ok bool
			if model, version, ok = routes(spec.Endpoint); !ok {
				return nil, drift.ModelInfo{}, drift.Invalid("endpoint: no endpoint %q", spec.Endpoint)
			}
		} else if i := strings.IndexAny(spec.Model, "@/"); i >= 0 {
			model, version = spec.Model[:i], spec.Model[i+1:]
		}
		l, err := catalog.AcquireLatest(ctx, model, version)
		if err != nil {
			return nil, drift.ModelInfo{}, err
		}
		info := drift.ModelInfo{Name: l.Version.Name, Version: l.Version.Version, UUID: l.Version.UUID}
		raw := l.Version.Baseline
		l.Release()
		if start, end, ok := spec.BaselineRange(); ok {
			b, err := query.Baseline(ctx, tables.Dir(tablesDir), spec, start, end)
			return b, info, err
		}
		if len(raw) == 0 {
			return nil, info, drift.Invalid("baseline: model %s version %d was registered without a baseline; register one, or give a time range of the inference table", info.Name, info.Version)
		}
		b, err := drift.DecodeBaseline(raw)
		return b, info, err
	}
}

// BaselineChecker lets the registry judge the baselines of registrations.
func BaselineChecker() registry.BaselineChecker { return baselineChecker{} }

type baselineChecker struct{}

func (baselineChecker) CheckBaseline(ctx context.Context, raw []byte) error {
	_, err := drift.DecodeBaseline(raw)
	return err
}

// drift API

func (s *Server) monitors() (*drift.Service, error) {
	if s.drift == nil {
		return nil, notReady("this gateway has no drift monitoring")
	}
	return s.drift, nil
}

func (s *Server) putMonitor(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	spec, err := drift.DecodeNamedMonitorSpec(param(c, "monitor"), c.Body())
	if err != nil {
		return err
	}
	m, err := ds.Put(c.UserContext(), spec)
	if err != nil {
		return err
	}
	if err := s.reg.RecordAudit(c.UserContext(), actor(c), "put_monitor", spec.Endpoint, nil, spec.Redacted()); err != nil {
		return err
	}
	return c.JSON(m.Report().Redacted())
}

func (s *Server) deleteMonitor(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	if err := ds.Delete(c.UserContext(), param(c, "monitor")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listMonitors(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	out := []monitorEntry{}
	for _, m := range ds.List() {
		e := monitorEntry{MonitorSpec: m.Spec().Redacted(), Status: m.Status()}
		if e.Status == drift.StatusError {
			e.Error = s.hidePaths(m.Err().Error())
		}
		out = append(out, e)
	}
	return c.JSON(fiber.Map{"monitors": out})
}

// monitorEntry is a monitor in the list: its spec (webhook secret
// redacted), its status, and why it is not running when it is not.
type monitorEntry struct {
	drift.MonitorSpec
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// monitorReport is a monitor's state with the model's measured quality
// where labels exist; without it (nil) when the caller asked for none.
type monitorReport struct {
	drift.MonitorReport
	Performance []Performance `json:"performance,omitzero"`
}

// Performance is a model's measured quality on labelled predictions, in a
// monitor's report.
type Performance = query.Performance

// getMonitorReport answers a monitor's report and, unless
// ?performance=false, the labelled performance of what it watches, which
// reads every label and the rows of the inference table it watches (so a
// screen that refreshes often asks for it less often).
func (s *Server) getMonitorReport(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	m, err := ds.Get(c.Params("monitor"))
	if err != nil {
		return err
	}
	// The report counts every prediction answered before it was asked for:
	// the recorder hands them to the monitors and the table's writer, which
	// reads them where they are, without completing a file.
	ctx := c.UserContext()
	if err := s.recorder.flush(ctx); err != nil {
		return err
	}
	measure, err := boolQuery(c, "performance", true)
	if err != nil {
		return err
	}
	r := monitorReport{MonitorReport: m.Report().Redacted()}
	r.Error = s.hidePaths(r.Error)
	if measure {
		r.Performance = []Performance{}
	}
	if measure && s.tables != nil {
		labels, err := tables.Dir(s.tablesDir).ReadLabels(ctx)
		if err != nil {
			return err
		}
		if r.Performance, err = query.Measure(ctx, s.tables, labels, query.MonitorFilter(m.Spec(), time.Time{}, time.Time{})); err != nil {
			return err
		}
	}
	return c.JSON(r)
}

// runMonitor judges a time range of the inference table as one window:
// {"from": "...", "to": "..."} in RFC 3339. It sees every prediction
// answered before it, without completing a file of the table.
func (s *Server) runMonitor(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	if s.tables == nil {
		return notReady("the inference tables are off (inference_tables.enabled)")
	}
	var body struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v (from and to are RFC 3339 times)", err)
	}
	if !body.From.Before(body.To) {
		return invalidInput("from must be before to")
	}
	m, err := ds.Get(c.Params("monitor"))
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := s.recorder.flush(ctx); err != nil {
		return err
	}
	spec := m.Spec()
	report, err := ds.Batch(ctx, spec.Name, body.From, body.To, func(observe func(features, predictions map[string]any)) error {
		return query.Observe(ctx, s.tables, query.MonitorFilter(spec, body.From, body.To), observe)
	})
	if err != nil {
		return err
	}
	return c.JSON(report)
}

// boolQuery reads the query parameter name as true or false, def when it is
// absent.
func boolQuery(c *fiber.Ctx, name string, def bool) (bool, error) {
	switch v := c.Query(name); v {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, invalidInput("query parameter %s=%q: must be true or false", name, v)
	}
}
