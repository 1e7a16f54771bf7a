package router

import (
	"fmt"
	"slices"
	"time"

	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/internal/names"
)

// Policy limits.
const (
	MaxVariants = 16
	MaxWeight   = 1_000_000
	maxIdent    = 64
)

// Variant is one arm of a traffic split: a model reference and its weight.
// A variant receives weight / (sum of weights) of the traffic; weight 0 turns
// it off while keeping it reachable by the override header.
type Variant struct {
	Name   string `json:"name"`
	Model  string `json:"model"`
	Weight int    `json:"weight"`
}

// Sticky names the entity key whose value picks the variant, so that one
// entity (one user, say) always lands on the same variant.
type Sticky struct {
	Entity string `json:"entity"`
}

// Shadow sends a copy of Percent per cent of the requests to Model; its
// answer is logged, never returned.
type Shadow struct {
	Model   string  `json:"model"`
	Percent float64 `json:"percent"`
}

// Table says how the endpoint's predictions are recorded in the inference
// table: Sample is the fraction of requests recorded (all when unset), PII the
// fields (entity columns, request values or input names) whose values are
// replaced by a keyed hash before they are written.
type Table struct {
	Sample *float64 `json:"sample,omitempty"`
	PII    []string `json:"pii,omitempty"`
}

// SampleRate is the fraction of requests recorded.
func (t *Table) SampleRate() float64 {
	if t == nil || t.Sample == nil {
		return 1
	}
	return *t.Sample
}

// Policy is an endpoint's traffic policy.
type Policy struct {
	Variants []Variant `json:"variants"`
	Sticky   *Sticky   `json:"sticky,omitempty"`
	Shadow   *Shadow   `json:"shadow,omitempty"`
	Table    *Table    `json:"table,omitempty"`
}

// Endpoint is what applications call: a name, its traffic policy, and the
// canary in progress, if any. Endpoints are values: every change returns a new
// Endpoint with Revision one higher and never touches the old one.
type Endpoint struct {
	Name     string `json:"name"`
	Policy   Policy `json:"policy"`
	Revision int    `json:"revision"`
	// Salt seeds the sticky hash; a new salt reshuffles every entity's
	// assignment (for a fresh experiment) without changing the weights.
	Salt      string    `json:"salt"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Canary    *Canary   `json:"canary,omitempty"`
}

// DecodePolicy decodes a policy strictly (unknown fields are errors) and
// checks its syntax with Check(nil); the caller then checks that the models
// exist with Check(resolve). Errors match ErrInvalid.
func DecodePolicy(body []byte) (Policy, error) {
	var p Policy
	if err := jsonerr.Decode(body, &p); err != nil {
		return Policy{}, invalid("%v", err)
	}
	if err := p.Check(nil); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Check reports whether the policy is well formed: 1 to 16 variants with
// distinct names, weights from 0 to 1,000,000 of which at least one is
// positive, model references that parse, and a shadow percentage from 0 to
// 100. resolve, when not nil, is asked about every model reference (variants,
// then shadow) and its error refuses the policy. Errors match ErrInvalid (and
// resolve's error, if that refused) and name the field, as in
// "variants[1].weight: must not be negative, got -5".
func (p Policy) Check(resolve func(ModelRef) error) error {
	if len(p.Variants) == 0 || len(p.Variants) > MaxVariants {
		return invalid("variants: want 1 to %d variants, got %d", MaxVariants, len(p.Variants))
	}
	positive := false
	for i, v := range p.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if err := checkIdent(field+".name", v.Name, true); err != nil {
			return err
		}
		for j := range i {
			if p.Variants[j].Name == v.Name {
				return invalid("%s.name: %q is already the name of variants[%d]", field, v.Name, j)
			}
		}
		if err := checkWeight(field+".weight", v.Weight); err != nil {
			return err
		}
		positive = positive || v.Weight > 0
		if err := checkModel(field+".model", v.Model, resolve); err != nil {
			return err
		}
	}
	if !positive {
		return invalid("variants: all weights are 0; at least one must be positive")
	}
	if p.Sticky != nil {
		if err := checkIdent("sticky.entity", p.Sticky.Entity, false); err != nil {
			return err
		}
	}
	if p.Shadow != nil {
		if err := checkModel("shadow.model", p.Shadow.Model, resolve); err != nil {
			return err
		}
		if !(p.Shadow.Percent >= 0 && p.Shadow.Percent <= 100) {
			return invalid("shadow.percent: want 0 to 100, got %v", p.Shadow.Percent)
		}
	}
	if t := p.Table; t != nil {
		if r := t.SampleRate(); !(r >= 0 && r <= 1) {
			return invalid("table.sample: want a fraction from 0 to 1, got %v", r)
		}
		for i, f := range t.PII {
			if f == "" || len(f) > maxIdent {
				return invalid("table.pii[%d]: want a field name of 1 to %d characters", i, maxIdent)
			}
		}
	}
	return nil
}

// CheckEndpointName reports whether name can name an endpoint. Endpoint names
// follow the rule of model names (registry.CheckModelName): 1 to 128 letters,
// digits, '_', '-' or '.', starting with a letter or digit.
func CheckEndpointName(name string) error {
	if err := names.Check(name); err != nil {
		return invalid("endpoint name: %v", err)
	}
	return nil
}

// NewEndpoint returns a new endpoint at revision 1, salted with its name.
// It checks the name and the policy's syntax; the caller checks the models
// with Policy.Check(resolve) first.
func NewEndpoint(name string, p Policy, now time.Time) (Endpoint, error) {
	if err := CheckEndpointName(name); err != nil {
		return Endpoint{}, err
	}
	if err := p.Check(nil); err != nil {
		return Endpoint{}, err
	}
	e := Endpoint{Name: name, Policy: p, Salt: name, CreatedAt: now}
	return e.next(now), nil
}

// SetPolicy returns e with policy p, which the caller has checked. It is
// refused while a canary is running or paused: the canary owns the weights.
// A finished canary's record is dropped.
func SetPolicy(e Endpoint, p Policy, now time.Time) (Endpoint, error) {
	if err := p.Check(nil); err != nil {
		return Endpoint{}, err
	}
	if e.Canary.active() {
		return Endpoint{}, conflict("endpoint %s: a canary is %s; abort it before replacing the policy", e.Name, e.Canary.State)
	}
	n := e.clone()
	n.Policy = p.clone()
	n.Canary = nil
	return n.next(now), nil
}

// SetWeights returns e with the named variants' weights changed; variants not
// named keep theirs. Every name must be a variant, and the weights are checked
// as in Policy.Check. It is refused with ErrConflict while a canary is
// running: pause or abort it first.
func SetWeights(e Endpoint, weights map[string]int, now time.Time) (Endpoint, error) {
	if e.Canary != nil && e.Canary.State == CanaryRunning {
		return Endpoint{}, conflict("endpoint %s: a canary is running and sets the weights; pause or abort it first", e.Name)
	}
	n := e.clone()
	for _, name := range sortedKeys(weights) {
		i := n.Policy.variant(name)
		if i < 0 {
			return Endpoint{}, invalid("weights: endpoint %s has no variant %q", e.Name, name)
		}
		if err := checkWeight(fmt.Sprintf("weights[%q]", name), weights[name]); err != nil {
			return Endpoint{}, err
		}
		n.Policy.Variants[i].Weight = weights[name]
	}
	if err := n.Policy.Check(nil); err != nil {
		return Endpoint{}, err
	}
	return n.next(now), nil
}

func (p Policy) variant(name string) int {
	for i, v := range p.Variants {
		if v.Name == name {
			return i
		}
	}
	return -1
}

// next returns e as its next revision, changed at now.
func (e Endpoint) next(now time.Time) Endpoint {
	e.Revision++
	e.UpdatedAt = now
	return e
}

// clone returns a deep copy of e, so that a change never reaches a value a
// reader may hold.
func (e Endpoint) clone() Endpoint {
	e.Policy = e.Policy.clone()
	if e.Canary != nil {
		c := e.Canary.clone()
		e.Canary = &c
	}
	return e
}

func (p Policy) clone() Policy {
	p.Variants = append([]Variant(nil), p.Variants...)
	if p.Sticky != nil {
		s := *p.Sticky
		p.Sticky = &s
	}
	if p.Shadow != nil {
		s := *p.Shadow
		p.Shadow = &s
	}
	if p.Table != nil {
		t := *p.Table
		t.PII = slices.Clone(t.PII)
		if t.Sample != nil {
			r := *t.Sample
			t.Sample = &r
		}
		p.Table = &t
	}
	return p
}

func checkWeight(field string, w int) error {
	switch {
	case w < 0:
		return invalid("%s: must not be negative, got %d", field, w)
	case w > MaxWeight:
		return invalid("%s: at most %d, got %d", field, MaxWeight, w)
	}
	return nil
}

func checkModel(field, s string, resolve func(ModelRef) error) error {
	ref, err := ParseRef(s)
	if err != nil {
		return invalid("%s: %v", field, err)
	}
	if resolve != nil {
		if err := resolve(ref); err != nil {
			return invalidCause(fmt.Sprintf("%s: %q", field, s), err)
		}
	}
	return nil
}

// checkIdent accepts 1 to 64 lower-case letters, digits and '_' (and '-' if
// dash), starting with a letter. Variant names use dashes; sticky entities
// follow the feature store's entity column rule, which has none.
func checkIdent(field, s string, dash bool) error {
	if s == "" || len(s) > maxIdent {
		return invalid("%s: want 1 to %d characters, got %d", field, maxIdent, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_' || dash && c == '-')
		if !ok {
			allowed := "lower-case letters, digits and '_'"
			if dash {
				allowed = "lower-case letters, digits, '_' and '-'"
			}
			return invalid("%s %q: use %s, starting with a letter", field, s, allowed)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
