package router

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/registry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    ModelRef
		wantErr string
	}{
		{"churn", ModelRef{Name: "churn"}, ""},
		{"churn@champion", ModelRef{Name: "churn", Alias: "champion"}, ""},
		{"churn/7", ModelRef{Name: "churn", Version: 7}, ""},
		{"fraud.v2@challenger-1", ModelRef{Name: "fraud.v2", Alias: "challenger-1"}, ""},
		{"", ModelRef{}, `model reference "": model name: must not be empty`},
		{"churn@", ModelRef{}, `model reference "churn@": alias: must not be empty`},
		{"churn@1st", ModelRef{}, "must start with a letter"},
		{"churn/07", ModelRef{}, `version "07": must be a positive whole number`},
		{"churn/0", ModelRef{}, "positive whole number"},
		{"churn/7@x", ModelRef{}, "positive whole number"},
		{"churn@a/7", ModelRef{}, `character '/' is not allowed`},
		{"@champion", ModelRef{}, "model name: must not be empty"},
		{"-churn", ModelRef{}, "must start with a letter or digit"},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseRef(%q) = %v, %v; want ErrInvalid containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, s)
		}
	}
}

func TestDecodePolicy(t *testing.T) {
	const good = `{"variants": [{"name": "control", "model": "churn@champion", "weight": 90},
	              {"name": "treatment", "model": "churn@challenger", "weight": 10}],
	 "sticky": {"entity": "user_id"},
	 "shadow": {"model": "churn/7", "percent": 100}}`
	p, err := DecodePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		Variants: []Variant{{"control", "churn@champion", 90}, {"treatment", "churn@challenger", 10}},
		Sticky:   &Sticky{Entity: "user_id"},
		Shadow:   &Shadow{Model: "churn/7", Percent: 100},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("DecodePolicy = %+v, want %+v", p, want)
	}

	variants := func(vs ...string) string {
		return `{"variants": [` + strings.Join(vs, ",") + `]}`
	}
	v := func(name, model string, weight int) string {
		return fmt.Sprintf(`{"name": %q, "model": %q, "weight": %d}`, name, model, weight)
	}
	many := make([]string, 17)
	for i := range many {
		many[i] = v(fmt.Sprintf("v%d", i), "m", 1)
	}
	tests := []struct{ in, want string }{
		{`{"variants": [], "extra": 1}`, `unknown field "extra"`},
		{variants(`{"name": "a", "model": "m", "weight": 1, "wieght": 2}`), `unknown field "wieght"`},
		{`{"variants": [{"name": "a", "model": "m", "weight": "9"}]}`, `field "variants.weight": expected a whole number, got string`},
		{`{"variants": []}`, "variants: want 1 to 16 variants, got 0"},
		{`{}`, "variants: want 1 to 16 variants, got 0"},
		{variants(many...), "variants: want 1 to 16 variants, got 17"},
		{variants(v("control", "m", 1), v("treatment", "m", -5)), "variants[1].weight: must not be negative, got -5"},
		{variants(v("control", "m", 1_000_001)), "variants[0].weight: at most 1000000, got 1000001"},
		{variants(v("control", "m", 0), v("treatment", "m", 0)), "variants: all weights are 0; at least one must be positive"},
		{variants(v("control", "m", 1), v("control", "n", 1)), `variants[1].name: "control" is already the name of variants[0]`},
		{variants(v("", "m", 1)), "variants[0].name: want 1 to 64 characters, got 0"},
		{variants(v(strings.Repeat("a", 65), "m", 1)), "variants[0].name: want 1 to 64 characters, got 65"},
		{variants(v("Control", "m", 1)), `variants[0].name "Control": use lower-case letters, digits, '_' and '-', starting with a letter`},
		{variants(v("1a", "m", 1)), "starting with a letter"},
		{variants(v("-a", "m", 1)), "starting with a letter"},
		{variants(v("a.b", "m", 1)), "use lower-case letters"},
		{variants(v("a", "churn@", 1)), `variants[0].model: model reference "churn@": alias: must not be empty`},
		{variants(v("a", "", 1)), `variants[0].model: model reference "": model name: must not be empty`},
		{`{"variants": [` + v("a", "m", 1) + `], "sticky": {"entity": ""}}`, "sticky.entity: want 1 to 64 characters, got 0"},
		{`{"variants": [` + v("a", "m", 1) + `], "sticky": {"entity": "user-id"}}`, `sticky.entity "user-id": use lower-case letters, digits and '_'`},
		{`{"variants": [` + v("a", "m", 1) + `], "shadow": {"model": "m/x", "percent": 5}}`, `shadow.model: model reference "m/x"`},
		{`{"variants": [` + v("a", "m", 1) + `], "shadow": {"model": "m/2", "percent": 100.5}}`, "shadow.percent: want 0 to 100, got 100.5"},
		{`{"variants": [` + v("a", "m", 1) + `], "shadow": {"model": "m/2", "percent": -1}}`, "shadow.percent: want 0 to 100, got -1"},
	}
	for _, tt := range tests {
		_, err := DecodePolicy([]byte(tt.in))
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodePolicy(%s)\n got %v\nwant ErrInvalid containing %q", tt.in, err, tt.want)
		}
	}
}

func TestPolicyCheck_Resolve(t *testing.T) {
	p := Policy{
		Variants: []Variant{{"control", "churn@champion", 90}, {"treatment", "churn@nope", 10}},
		Shadow:   &Shadow{Model: "churn/9", Percent: 5},
	}
	var asked []string
	resolve := func(r ModelRef) error {
		asked = append(asked, r.String())
		if r.Alias == "nope" || r.Version == 9 {
			return registry.NotFound("model churn has no %s", strings.TrimPrefix(r.String(), "churn"))
		}
		return nil
	}
	err := p.Check(resolve)
	const want = `variants[1].model: "churn@nope": model churn has no @nope`
	if err == nil || err.Error() != want {
		t.Fatalf("Check = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Check error matches neither ErrInvalid nor the resolver's ErrNotFound: %v", err)
	}
	if !reflect.DeepEqual(asked, []string{"churn@champion", "churn@nope"}) {
		t.Errorf("resolver asked about %v", asked)
	}
	p.Variants[1].Model = "churn@challenger"
	if err := p.Check(resolve); err == nil || !strings.HasPrefix(err.Error(), `shadow.model: "churn/9": `) {
		t.Errorf("Check = %v, want the shadow model refused", err)
	}
}

func TestCheckEndpointName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"churn", ""},
		{"churn.v2-eu_1", ""},
		{"", "endpoint name: must not be empty"},
		{"_x", `endpoint name: "_x": must start with a letter or digit`},
		{"a/b", `endpoint name: "a/b": character '/' is not allowed (letters, digits, '_', '-' and '.' are)`},
		{strings.Repeat("a", 129), "endpoint name: at most 128 characters, got 129"},
	}
	for _, tt := range tests {
		err := CheckEndpointName(tt.in)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckEndpointName(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func abPolicy(control, treatment int) Policy {
	return Policy{Variants: []Variant{{"control", "churn@champion", control}, {"treatment", "churn@challenger", treatment}}}
}

func TestNewEndpoint(t *testing.T) {
	e, err := NewEndpoint("churn", abPolicy(90, 10), t0)
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision != 1 || e.Salt != "churn" || !e.CreatedAt.Equal(t0) || !e.UpdatedAt.Equal(t0) {
		t.Errorf("NewEndpoint = %+v", e)
	}
	if _, err := NewEndpoint("a b", abPolicy(90, 10), t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewEndpoint with a bad name: %v", err)
	}
	if _, err := NewEndpoint("churn", abPolicy(0, 0), t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewEndpoint with a bad policy: %v", err)
	}
}

func TestSetWeights(t *testing.T) {
	e, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	before := e.clone()
	t1 := t0.Add(time.Minute)

	got, err := SetWeights(e, map[string]int{"treatment": 20}, t1)
	if err != nil {
		t.Fatal(err)
	}
	if w := weights(got); !reflect.DeepEqual(w, []int{90, 20}) || got.Revision != 2 || !got.UpdatedAt.Equal(t1) {
		t.Errorf("SetWeights: weights %v, revision %d, updated %v", w, got.Revision, got.UpdatedAt)
	}
	if !reflect.DeepEqual(e, before) {
		t.Errorf("SetWeights changed its input: %+v", e)
	}

	tests := []struct {
		weights map[string]int
		want    string
	}{
		{map[string]int{"treatment": -5}, `weights["treatment"]: must not be negative, got -5`},
		{map[string]int{"control": 2_000_000}, `weights["control"]: at most 1000000, got 2000000`},
		{map[string]int{"control": 0, "treatment": 0}, "variants: all weights are 0; at least one must be positive"},
		{map[string]int{"control": 50, "nope": 50}, `weights: endpoint churn has no variant "nope"`},
	}
	for _, tt := range tests {
		_, err := SetWeights(e, tt.weights, t1)
		if err == nil || !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("SetWeights(%v) = %v, want %q", tt.weights, err, tt.want)
		}
	}
}

func TestSetPolicy(t *testing.T) {
	e, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	p := abPolicy(50, 50)
	p.Sticky = &Sticky{Entity: "user_id"}
	got, err := SetPolicy(e, p, t0.Add(time.Second))
	if err != nil || !reflect.DeepEqual(got.Policy, p) || got.Revision != 2 {
		t.Fatalf("SetPolicy = %+v, %v", got, err)
	}
	p.Sticky.Entity = "changed"
	if got.Policy.Sticky.Entity != "user_id" {
		t.Error("SetPolicy kept the caller's pointer")
	}
	if _, err := SetPolicy(e, abPolicy(0, 0), t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPolicy with a bad policy: %v", err)
	}
	running, _ := StartCanary(e, testSpec(), t0)
	if _, err := SetPolicy(running, p, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("SetPolicy during a canary: %v, want ErrConflict", err)
	}
}

func weights(e Endpoint) []int {
	w := make([]int, len(e.Policy.Variants))
	for i, v := range e.Policy.Variants {
		w[i] = v.Weight
	}
	return w
}

func FuzzDecodePolicy(f *testing.F) {
	f.Add([]byte(`{"variants": [{"name": "control", "model": "churn@champion", "weight": 90}, {"name": "treatment", "model": "churn/3", "weight": 10}], "sticky": {"entity": "user_id"}, "shadow": {"model": "churn", "percent": 12.5}}`))
	f.Add([]byte(`{"variants": [{"name": "a", "model": "m", "weight": 0}]}`))
	f.Add([]byte(`{"variants": null, "sticky": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePolicy(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodePolicy error does not match ErrInvalid: %v", err)
			}
			return
		}
		e := Endpoint{Name: "e", Policy: p, Salt: "s"}
		r, err := NewRoute(e)
		if err != nil {
			t.Fatalf("NewRoute of a decoded policy: %v", err)
		}
		if i := r.Choose("unit", func() float64 { return 0.5 }); r.Weight(i) == 0 {
			t.Fatalf("Choose picked variant %d of weight 0", i)
		}
	})
}
