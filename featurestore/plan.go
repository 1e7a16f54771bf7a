package featurestore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mlgate/mlgate/internal/jsonerr"
)

// Spec is a model version's feature spec: which entity columns a request
// gives, which features ("view:feature") or request values ("request:name")
// fill the columns of each model input, and the defaults used when a value is
// missing or stale.
type Spec struct {
	Entities []string                   `json:"entities"`
	Inputs   map[string][]string        `json:"inputs"`
	Defaults map[string]json.RawMessage `json:"defaults"`
}

// DecodeSpec parses a feature spec strictly.
func DecodeSpec(raw []byte) (*Spec, error) {
	var s Spec
	if err := jsonerr.Decode(raw, &s); err != nil {
		return nil, invalid("feature_spec: %v", err)
	}
	return &s, nil
}

// Input describes a model input, in KServe V2 terms.
type Input struct {
	Name     string
	Datatype string
	Shape    []int64
}

// requestPrefix marks a value the request supplies.
const requestPrefix = "request:"

// Plan is a feature spec compiled against a model's inputs and the feature
// views: the lookups to make, and where each value goes. Compile it once per
// model version; Assemble runs it per request.
type Plan struct {
	entities []string
	inputs   []planInput
	lookups  []planLookup
	request  []string // names of request values
	refs     []string // every "view:feature" the plan reads, for statuses
}

type planLookup struct {
	view     *View
	features []int
}

type planInput struct {
	name     string
	datatype string
	width    int
	rank     int
	cols     []column
}

// column is one position of an input's rows: a feature or a request value.
type column struct {
	ref    string
	refIdx int // index into Plan.refs, for statuses (features only)
	lookup int // index into Plan.lookups, or -1 for a request value
	pos    int // position in the lookup's features, or index into Plan.request
	typ    Type
	def    Value
}

// Compile checks a spec against a model's inputs and the service's views and
// returns its plan. Errors name the part of the spec at fault.
func (s *Service) Compile(spec *Spec, inputs []Input) (*Plan, error) {
	return compile(spec, inputs, *s.set.Load())
}

func compile(spec *Spec, inputs []Input, views map[string]*View) (*Plan, error) {
	if len(spec.Entities) == 0 {
		return nil, invalid("feature_spec.entities: at least one entity column is required")
	}
	for i, e := range spec.Entities {
		if err := checkName(fmt.Sprintf("feature_spec.entities[%d]", i), e); err != nil {
			return nil, err
		}
	}
	p := &Plan{entities: slices.Clone(spec.Entities)}
	sort.Strings(p.entities)
	for name := range spec.Inputs {
		if !slices.ContainsFunc(inputs, func(in Input) bool { return in.Name == name }) {
			return nil, invalid("feature_spec.inputs.%s: the model has no input %q", name, name)
		}
	}
	used := map[string]Type{}
	for _, in := range inputs {
		refs, ok := spec.Inputs[in.Name]
		if !ok {
			return nil, invalid("feature_spec.inputs: model input %q is not filled; list the features for it", in.Name)
		}
		pi, err := p.compileInput(in, refs, spec, views, used)
		if err != nil {
			return nil, err
		}
		p.inputs = append(p.inputs, pi)
	}
	for ref := range spec.Defaults {
		if _, ok := used[ref]; !ok {
			return nil, invalid("feature_spec.defaults: %q is not a feature any input uses", ref)
		}
	}
	return p, nil
}

func (p *Plan) compileInput(in Input, refs []string, spec *Spec, views map[string]*View, used map[string]Type) (planInput, error) {
	at := "feature_spec.inputs." + in.Name
	pi := planInput{name: in.Name, datatype: in.Datatype, width: len(refs), rank: len(in.Shape)}
	switch in.Datatype {
	case "FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES":
	default:
		return pi, invalid("%s: model input of datatype %s cannot be filled from features", at, in.Datatype)
	}
	if len(refs) == 0 {
		return pi, invalid("%s: list at least one feature", at)
	}
	switch {
	case len(in.Shape) == 2 && in.Shape[0] < 0:
		if w := in.Shape[1]; w >= 0 && w != int64(len(refs)) {
			return pi, invalid("%s: %d features listed, but the input is %d wide (shape %v)", at, len(refs), w, in.Shape)
		}
	case len(in.Shape) == 1 && in.Shape[0] < 0:
		if len(refs) != 1 {
			return pi, invalid("%s: the input has shape %v, one value per row, but %d features are listed", at, in.Shape, len(refs))
		}
	default:
		return pi, invalid("%s: input shape %v does not take one row per entity: want [-1] or [-1, width]", at, in.Shape)
	}
	for _, ref := range refs {
		col, err := p.compileColumn(at, in, ref, spec, views)
		if err != nil {
			return pi, err
		}
		if col.typ == FloatList {
			if len(refs) != 1 || in.Shape[len(in.Shape)-1] < 1 || len(in.Shape) != 2 {
				return pi, invalid("%s: float_list feature %s must be the input's only feature, and the input's width fixed", at, ref)
			}
			pi.width = int(in.Shape[1])
		}
		used[ref] = col.typ
		pi.cols = append(pi.cols, col)
	}
	return pi, nil
}

func (p *Plan) compileColumn(at string, in Input, ref string, spec *Spec, views map[string]*View) (column, error) {
	if name, ok := strings.CutPrefix(ref, requestPrefix); ok {
		if name == "" {
			return column{}, invalid("%s: %q names no request value", at, ref)
		}
		if _, ok := spec.Defaults[ref]; ok {
			return column{}, invalid("feature_spec.defaults: %q is a request value, which every request must give; it takes no default", ref)
		}
		i := slices.Index(p.request, name)
		if i < 0 {
			p.request = append(p.request, name)
			i = len(p.request) - 1
		}
		return column{ref: ref, lookup: -1, pos: i}, nil
	}
	r, err := parseRef(ref, views)
	if err != nil {
		return column{}, invalid("%s: %v", at, err)
	}
	for _, e := range r.View.Entities {
		if !slices.Contains(spec.Entities, e) {
			return column{}, invalid("%s: feature %s is keyed by %s, which feature_spec.entities does not list", at, ref, e)
		}
	}
	f := r.View.Features[r.Feature]
	if err := fits(f.Type, in.Datatype); err != nil {
		return column{}, invalid("%s: feature %s: %v", at, ref, err)
	}
	col := column{ref: ref, typ: f.Type}
	if raw, ok := spec.Defaults[ref]; ok {
		if col.def, err = ValueFromJSON(f.Type, raw); err != nil {
			return column{}, invalid("feature_spec.defaults.%s: %v", ref, err)
		}
	}
	col.lookup = slices.IndexFunc(p.lookups, func(l planLookup) bool { return l.view == r.View })
	if col.lookup < 0 {
		p.lookups = append(p.lookups, planLookup{view: r.View})
		col.lookup = len(p.lookups) - 1
	}
	l := &p.lookups[col.lookup]
	col.pos = slices.Index(l.features, r.Feature)
	if col.pos < 0 {
		l.features = append(l.features, r.Feature)
		col.pos = len(l.features) - 1
	}
	col.refIdx = slices.Index(p.refs, ref)
	if col.refIdx < 0 {
		p.refs = append(p.refs, ref)
		col.refIdx = len(p.refs) - 1
	}
	return col, nil
}

// fits reports whether a feature of type t can fill an input of datatype dt.
func fits(t Type, dt string) error {
	ok := false
	switch dt {
	case "FP32", "FP64":
		ok = t != String
	case "INT32", "INT64":
		ok = t == Int || t == Bool
	case "BOOL":
		ok = t == Bool
	case "BYTES":
		ok = t == String
	}
	if !ok {
		return fmt.Errorf("a %s feature cannot fill a %s input", t, dt)
	}
	return nil
}

// Entities returns the entity columns a request must give, sorted.
func (p *Plan) Entities() []string { return p.entities }

// Assembled is one model input filled by a plan: Data is []float32,
// []float64, []int32, []int64, []bool or []string by the input's datatype.
type Assembled struct {
	Name     string
	Datatype string
	Shape    []int64
	Data     any
}

// Assembly is what Assemble gives: the inputs, in the model's order, and the
// status of every feature value read, per row.
type Assembly struct {
	Inputs   []Assembled
	Refs     []string
	Statuses [][]Status // [row][ref]
	// Used points at the value each feature gave each row, after defaults:
	// [ref][row]. The values are the rows read (or the cache's, or the
	// plan's defaults), which are never written once read: a request's
	// 100 × 50 values are not copied.
	Used     [][]*Value
	Defaults int // values that took their default
	// Degraded names the stores that could not answer, sorted; their values
	// came from the cache, however old, or took their defaults.
	Degraded []string

	defaultsByView []int // by plan lookup
}

// Assemble reads the features for the entity rows, fills in defaults and
// request values, and lays them out as the model's inputs. request holds, per
// request value name, one JSON value per row.
func (s *Service) Assemble(ctx context.Context, p *Plan, entities map[string][]string, request map[string][]json.RawMessage) (*Assembly, error) {
	n, err := entityRows(entities, p.entities)
	if err != nil {
		return nil, err
	}
	for _, name := range p.request {
		vals, ok := request[name]
		if !ok {
			return nil, invalid("request.%s: missing; the model's feature spec needs it", name)
		}
		if len(vals) != n {
			return nil, invalid("request.%s: %d values for %d entity rows", name, len(vals), n)
		}
	}
	for name := range request {
		if !slices.Contains(p.request, name) {
			return nil, invalid("request.%s: the model's feature spec does not use it (it uses: %s)", name, strings.Join(p.request, ", "))
		}
	}
	lookups := make([]Lookup, len(p.lookups))
	for i, pl := range p.lookups {
		lookups[i] = Lookup{View: pl.view, Keys: keysFor(pl.view, entities, n), Features: pl.features, Rows: make([]Row, n)}
	}
	now := s.now()
	degraded, err := s.read(ctx, lookups, now)
	if err != nil {
		return nil, err
	}
	a := &Assembly{Refs: p.refs, Statuses: make([][]Status, n), Degraded: degraded, defaultsByView: make([]int, len(p.lookups))}
	statuses := make([]Status, n*len(p.refs))
	for row := range n {
		a.Statuses[row] = statuses[row*len(p.refs) : (row+1)*len(p.refs) : (row+1)*len(p.refs)]
	}
	used := make([]*Value, n*len(p.refs))
	a.Used = make([][]*Value, len(p.refs))
	for i := range a.Used {
		a.Used[i] = used[i*n : (i+1)*n : (i+1)*n]
	}
	for _, in := range p.inputs {
		t, err := a.fill(in, n, lookups, request, now)
		if err != nil {
			return nil, err
		}
		a.Inputs = append(a.Inputs, t)
	}
	for i, d := range a.defaultsByView {
		if d > 0 {
			s.metrics.defaults.Add(ctx, int64(d), s.metrics.of(p.lookups[i].view).view)
		}
	}
	return a, nil
}

func (a *Assembly) fill(in planInput, n int, lookups []Lookup, request map[string][]json.RawMessage, now time.Time) (Assembled, error) {
	t := Assembled{Name: in.name, Datatype: in.datatype, Shape: []int64{int64(n), int64(in.width)}}
	if in.rank == 1 {
		t.Shape = t.Shape[:1]
	}
	out := newColumnWriter(in.datatype, n*in.width)
	// Whether each lookup's row is stale, found once per row rather than
	// for each of its values (see statusOf).
	stale := make([]bool, len(lookups))
	for row := range n {
		for i := range lookups {
			r := &lookups[i].Rows[row]
			stale[i] = r.Found && lookups[i].View.Stale(r.EventTS, now)
		}
		for c := range in.cols {
			col := &in.cols[c]
			if col.lookup < 0 {
				if err := out.addJSON(request[col.ref[len(requestPrefix):]][row]); err != nil {
					return t, invalid("request.%s[%d]: %v", col.ref[len(requestPrefix):], row, err)
				}
				continue
			}
			r := &lookups[col.lookup].Rows[row]
			v, st := &col.def, StatusPresent
			switch {
			case !r.Found || !r.Values[col.pos].Present():
				st = StatusNotFound
			case stale[col.lookup]:
				st = StatusStale
			default:
				v = &r.Values[col.pos]
			}
			a.Statuses[row][col.refIdx] = st
			if v == &col.def {
				a.Defaults++
				a.defaultsByView[col.lookup]++
			}
			a.Used[col.refIdx][row] = v
			if col.typ == FloatList {
				list := v.List
				if len(list) != in.width {
					list = col.def.List
					if len(list) != in.width {
						list = make([]float32, in.width)
					}
				}
				for _, f := range list {
					out.addFloat(float64(f))
				}
				continue
			}
			out.add(col.typ, v)
		}
	}
	t.Data = out.data()
	return t, nil
}

// columnWriter appends values to a typed slice.
type columnWriter struct {
	f32  []float32
	f64  []float64
	i32  []int32
	i64  []int64
	b    []bool
	s    []string
	kind columnKind
}

// columnKind is the datatype of a columnWriter, by the slice it fills.
type columnKind uint8

const (
	kindBytes columnKind = iota
	kindFP32
	kindFP64
	kindInt32
	kindInt64
	kindBool
)

func newColumnWriter(dt string, n int) *columnWriter {
	w := &columnWriter{}
	switch dt {
	case "FP32":
		w.kind, w.f32 = kindFP32, make([]float32, 0, n)
	case "FP64":
		w.kind, w.f64 = kindFP64, make([]float64, 0, n)
	case "INT32":
		w.kind, w.i32 = kindInt32, make([]int32, 0, n)
	case "INT64":
		w.kind, w.i64 = kindInt64, make([]int64, 0, n)
	case "BOOL":
		w.kind, w.b = kindBool, make([]bool, 0, n)
	case "BYTES":
		w.s = make([]string, 0, n)
	}
	return w
}

func (w *columnWriter) data() any {
	switch w.kind {
	case kindFP32:
		return w.f32
	case kindFP64:
		return w.f64
	case kindInt32:
		return w.i32
	case kindInt64:
		return w.i64
	case kindBool:
		return w.b
	}
	return w.s
}

func (w *columnWriter) addFloat(f float64) {
	switch w.kind {
	case kindFP32:
		w.f32 = append(w.f32, float32(f))
	case kindFP64:
		w.f64 = append(w.f64, f)
	case kindInt32:
		w.i32 = append(w.i32, int32(f))
	case kindInt64:
		w.i64 = append(w.i64, int64(f))
	case kindBool:
		w.b = append(w.b, f != 0)
	default:
		w.s = append(w.s, fmt.Sprint(f))
	}
}

// add appends a feature value (zero when absent) checked by Compile to fit.
func (w *columnWriter) add(t Type, v *Value) {
	switch {
	case w.kind == kindBytes:
		w.s = append(w.s, v.Str)
	case t == Float || t == Double:
		w.addFloat(v.Num)
	case w.kind == kindInt64:
		w.i64 = append(w.i64, v.Int)
	case w.kind == kindInt32:
		w.i32 = append(w.i32, int32(v.Int))
	default:
		w.addFloat(float64(v.Int))
	}
}

// addJSON appends a request value, which must suit the input's datatype.
func (w *columnWriter) addJSON(raw json.RawMessage) error {
	switch w.kind {
	case kindBytes:
		v, err := ValueFromJSON(String, raw)
		if err != nil || !v.Present() {
			return fmt.Errorf("%s is not a string", clip(raw))
		}
		w.s = append(w.s, v.Str)
	case kindBool:
		v, err := ValueFromJSON(Bool, raw)
		if err != nil || !v.Present() {
			return fmt.Errorf("%s is not true or false", clip(raw))
		}
		w.b = append(w.b, v.Int != 0)
	case kindInt32, kindInt64:
		v, err := ValueFromJSON(Int, raw)
		if err != nil || !v.Present() {
			return fmt.Errorf("%s is not a whole number", clip(raw))
		}
		if w.kind == kindInt32 && (v.Int > math.MaxInt32 || v.Int < math.MinInt32) {
			return fmt.Errorf("%d is out of range for INT32", v.Int)
		}
		w.add(Int, &v)
	default:
		v, err := ValueFromJSON(Double, raw)
		if err != nil || !v.Present() {
			return fmt.Errorf("%s is not a number", clip(raw))
		}
		w.addFloat(v.Num)
	}
	return nil
}
