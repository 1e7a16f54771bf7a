package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/serving/onnx"
	"github.com/mlgate/mlgate/serving/tables"
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

// rowSeries splits a row of the inference table into its entity rows, named
// as online: features from the recorded feature values, else the request's
// inputs; predictions from the response's outputs. It reads the bodies of
// both predict and V2 requests.
func rowSeries(r tables.Row) []series {
	var features map[string][]any
	if r.Features != "" {
		json.Unmarshal([]byte(r.Features), &features)
	}
	inputs := namedTensors(r.Request, "inputs")
	outputs := namedTensors(r.Response, "outputs")
	n := 0
	for _, vs := range features {
		n = max(n, len(vs))
	}
	for _, t := range append(inputs, outputs...) {
		n = max(n, t.rows)
	}
	rows := make([]series, n)
	for i := range rows {
		rows[i] = series{features: map[string]any{}, predictions: map[string]any{}}
		for name, vs := range features {
			if i < len(vs) {
				rows[i].features[name] = vs[i]
			}
		}
	}
	if features == nil {
		for _, t := range inputs {
			t.spread(rows, func(r series) map[string]any { return r.features })
		}
	}
	for _, t := range outputs {
		t.spread(rows, func(r series) map[string]any { return r.predictions })
	}
	return rows
}

// jsonTensor is a tensor read back from a recorded body.
type jsonTensor struct {
	name   string
	rows   int
	rank1  bool
	values []any // flat
}

func (t jsonTensor) spread(rows []series, into func(series) map[string]any) {
	if t.rows != len(rows) || t.rows == 0 {
		return
	}
	width := len(t.values) / t.rows
	for i, r := range rows {
		m := into(r)
		if t.rank1 {
			m[t.name] = t.values[i]
			continue
		}
		for j := range width {
			m[t.name+"["+strconv.Itoa(j)+"]"] = t.values[i*width+j]
		}
	}
}

// namedTensors reads the tensors under key of a recorded body: a predict
// body's object of nested arrays, or a V2 body's list of {name, shape, data}.
func namedTensors(body, key string) []jsonTensor {
	var doc map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &doc) != nil || doc[key] == nil {
		return nil
	}
	var out []jsonTensor
	var nested map[string]any
	if json.Unmarshal(doc[key], &nested) == nil {
		for name, v := range nested {
			rows, ok := v.([]any)
			if !ok {
				continue
			}
			t := jsonTensor{name: name, rows: len(rows), rank1: true}
			for _, r := range rows {
				if _, isArray := r.([]any); isArray {
					t.rank1 = false
				}
				t.values = flatten(t.values, r)
			}
			out = append(out, t)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		return out
	}
	var list []struct {
		Name  string  `json:"name"`
		Shape []int64 `json:"shape"`
		Data  any     `json:"data"`
	}
	if json.Unmarshal(doc[key], &list) != nil {
		return nil
	}
	for _, e := range list {
		if len(e.Shape) == 0 {
			continue
		}
		out = append(out, jsonTensor{name: e.Name, rows: int(e.Shape[0]), rank1: len(e.Shape) == 1, values: flatten(nil, e.Data)})
	}
	return out
}

func flatten(out []any, v any) []any {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			out = flatten(out, e)
		}
		return out
	}
	return append(out, v)
}

// DriftBaselines finds monitors' baselines: the one registered with the
// model version a monitor watches (an endpoint's heaviest variant), or one
// built from a time range of the inference table in tablesDir.
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
		l, err := catalog.Acquire(model, version)
		if err != nil {
			return nil, drift.ModelInfo{}, err
		}
		info := drift.ModelInfo{Name: l.Version.Name, Version: l.Version.Version, UUID: l.Version.UUID}
		raw := l.Version.Baseline
		l.Release()
		if start, end, ok := spec.BaselineRange(); ok {
			b, err := tableBaseline(tablesDir, spec, start, end)
			return b, info, err
		}
		if len(raw) == 0 {
			return nil, info, drift.Invalid("baseline: model %s version %d was registered without a baseline; register one, or give a time range of the inference table", info.Name, info.Version)
		}
		b, err := drift.DecodeBaseline(raw)
		return b, info, err
	}
}

// baselineBins is how many bins a baseline built from the inference table
// has per numeric series.
const baselineBins = 10

func tableBaseline(dir string, spec drift.MonitorSpec, start, end time.Time) (*drift.Baseline, error) {
	b := drift.NewBaselineBuilder()
	f := tables.Filter{Endpoint: spec.Endpoint, From: start, To: end}
	if spec.Model != "" {
		f.Model = drift.ModelName(spec.Model)
	}
	n := 0
	err := tables.ReadRows(dir, f, func(r tables.Row) error {
		if r.IsShadow || r.StatusCode != 200 {
			return nil
		}
		for _, row := range rowSeries(r) {
			n++
			for k, v := range row.features {
				b.Add(k, v)
			}
			for k, v := range row.predictions {
				b.AddPrediction(k, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the inference table for the baseline: %w", err)
	}
	if n == 0 {
		return nil, drift.Invalid("baseline: the inference table has no predictions from %s to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return b.Build(baselineBins), nil
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
// where labels exist.
type monitorReport struct {
	drift.MonitorReport
	Performance []Performance `json:"performance"`
}

func (s *Server) getMonitorReport(c *fiber.Ctx) error {
	ds, err := s.monitors()
	if err != nil {
		return err
	}
	m, err := ds.Get(c.Params("monitor"))
	if err != nil {
		return err
	}
	// The report counts every prediction answered before it was asked for.
	if err := s.FlushRecords(c.UserContext()); err != nil {
		return err
	}
	r := monitorReport{MonitorReport: m.Report().Redacted(), Performance: []Performance{}}
	r.Error = s.hidePaths(r.Error)
	if s.tables != nil {
		spec := m.Spec()
		f := tables.Filter{Endpoint: spec.Endpoint}
		if spec.Model != "" {
			f.Model = drift.ModelName(spec.Model)
		}
		if r.Performance, err = performance(s.tablesDir, f); err != nil {
			return err
		}
	}
	return c.JSON(r)
}

// runMonitor judges a time range of the inference table as one window:
// {"from": "...", "to": "..."} in RFC 3339.
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
	if err := s.FlushRecords(c.UserContext()); err != nil {
		return err
	}
	spec := m.Spec()
	f := tables.Filter{Endpoint: spec.Endpoint, From: body.From, To: body.To}
	if spec.Model != "" {
		f.Model = drift.ModelName(spec.Model)
	}
	report, err := ds.Batch(c.UserContext(), spec.Name, body.From, body.To, func(observe func(features, predictions map[string]any)) error {
		return tables.ReadRows(s.tablesDir, f, func(r tables.Row) error {
			if r.IsShadow || r.StatusCode != 200 {
				return nil
			}
			for _, row := range rowSeries(r) {
				observe(row.features, row.predictions)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return c.JSON(report)
}
