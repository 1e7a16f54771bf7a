package router

import "math"

// Route is an endpoint's policy compiled for the hot path. It is immutable:
// a policy change compiles a new Route, which the caller swaps in whole
// (behind an atomic.Pointer), and each Route carries the Stats of the
// requests it routed.
type Route struct {
	spec     Endpoint
	endpoint string
	revision int
	sticky   string
	seed     uint64 // FNV-1a state after the salt and its 0 byte
	total    int    // sum of the weights
	variants []routeVariant
	shadow   *routeShadow
	stats    *Stats
	sample   float64  // fraction of requests recorded in the inference table
	pii      []string // fields hashed before they are recorded
}

type routeVariant struct {
	name      string
	ref       ModelRef
	weight    int
	invWeight float64 // 1/weight, 0 for weight 0
}

type routeShadow struct {
	ref     ModelRef
	percent float64
}

// NewRoute compiles e's policy. It fails, with ErrInvalid, only if the
// policy does not pass Check.
func NewRoute(e Endpoint) (*Route, error) {
	if err := e.Policy.Check(nil); err != nil {
		return nil, err
	}
	r := &Route{
		spec:     e.clone(),
		endpoint: e.Name,
		revision: e.Revision,
		seed:     fnvByte(fnvString(fnvOffset, e.Salt), 0),
		variants: make([]routeVariant, len(e.Policy.Variants)),
	}
	for i, v := range e.Policy.Variants {
		ref, _ := ParseRef(v.Model) // Check parsed it
		r.variants[i] = routeVariant{name: v.Name, ref: ref, weight: v.Weight}
		if v.Weight > 0 {
			r.variants[i].invWeight = 1 / float64(v.Weight)
		}
		r.total += v.Weight
	}
	if s := e.Policy.Sticky; s != nil {
		r.sticky = s.Entity
	}
	if s := e.Policy.Shadow; s != nil {
		ref, _ := ParseRef(s.Model)
		r.shadow = &routeShadow{ref: ref, percent: s.Percent}
	}
	r.stats = newStats(r.variants)
	r.sample = e.Policy.Table.SampleRate()
	if e.Policy.Table != nil {
		r.pii = e.Policy.Table.PII
	}
	return r, nil
}

// TableSample is the fraction of the endpoint's requests recorded in the
// inference table.
func (r *Route) TableSample() float64 { return r.sample }

// PII lists the fields whose values are hashed before they are recorded.
func (r *Route) PII() []string { return r.pii }

// Spec returns a copy of the endpoint the route was compiled from.
func (r *Route) Spec() Endpoint { return r.spec.clone() }

// Endpoint returns the name of the endpoint the route was compiled from.
func (r *Route) Endpoint() string { return r.endpoint }

// Revision returns the revision of the endpoint the route was compiled from.
func (r *Route) Revision() int { return r.revision }

// Sticky returns the entity key whose value is the unit of assignment, or ""
// if the policy has none.
func (r *Route) Sticky() string { return r.sticky }

// Len returns the number of variants; they are numbered from 0 in the
// policy's order.
func (r *Route) Len() int { return len(r.variants) }

// Name returns variant i's name.
func (r *Route) Name(i int) string { return r.variants[i].name }

// Model returns variant i's model reference.
func (r *Route) Model(i int) ModelRef { return r.variants[i].ref }

// Weight returns variant i's weight.
func (r *Route) Weight(i int) int { return r.variants[i].weight }

// Stats returns the counters of the requests this route sent.
func (r *Route) Stats() *Stats { return r.stats }

// Variant returns the number of the named variant, for the header that pins
// a request to a variant. A pinned variant may have weight 0.
func (r *Route) Variant(name string) (int, bool) {
	for i := range r.variants {
		if r.variants[i].name == name {
			return i, true
		}
	}
	return 0, false
}

// Shadow reports whether this request also goes to the shadow model, and
// which: a copy of the policy's percentage of requests, drawn with rnd
// (uniform in [0, 1)), which is not called at 0 or 100 per cent.
func (r *Route) Shadow(rnd func() float64) (ModelRef, bool) {
	switch {
	case r.shadow == nil || r.shadow.percent <= 0:
		return ModelRef{}, false
	case r.shadow.percent >= 100:
		return r.shadow.ref, true
	}
	return r.shadow.ref, rnd()*100 < r.shadow.percent
}

// Choose returns the variant for a unit of assignment (the sticky entity's
// value). The same unit always gets the same variant for a given salt and
// policy, and each variant gets its weight's share of units.
//
// It is weighted rendezvous hashing, the exponential race: each variant with
// a positive weight draws u in (0, 1) from a hash of (salt, unit, variant
// name) and scores -ln(u)/weight; the lowest score wins. A variant wins with
// probability weight/total. When weights change, a unit moves from variant i
// to variant j only if j's weight grew by a larger factor than i's, so with
// two variants, or when one variant grows at the expense of the others in
// proportion (a canary step), the fraction of units that move is the least
// possible: 90/10 to 80/20 moves 10% of units, all from the first variant to
// the second. Adding or removing a variant moves only the units it takes or
// gives up.
//
// The hash is FNV-1a 64 over salt, 0x00, unit, 0x00, variant name, finished
// with MurmurHash3's fmix64; u is its top 53 bits plus one half, over 2^53.
// It is fixed, so every replica (and an offline analysis) assigns alike.
//
// With an empty unit the variant is drawn at random by weight with rnd
// (uniform in [0, 1)). Choose does not allocate.
func (r *Route) Choose(unit string, rnd func() float64) (variant int) {
	if unit == "" {
		return r.draw(rnd())
	}
	h := fnvByte(fnvString(r.seed, unit), 0)
	best, bestScore := 0, math.Inf(1)
	for i := range r.variants {
		v := &r.variants[i]
		if v.weight == 0 {
			continue
		}
		u := (float64(fmix64(fnvString(h, v.name))>>11) + 0.5) / (1 << 53)
		if score := -math.Log(u) * v.invWeight; score < bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// draw returns the variant in whose share of [0, 1) x falls.
func (r *Route) draw(x float64) int {
	left := x * float64(r.total)
	last := 0
	for i := range r.variants {
		w := r.variants[i].weight
		if w == 0 {
			continue
		}
		if left < float64(w) {
			return i
		}
		left -= float64(w)
		last = i
	}
	return last // x was 1 or rounding ran past the end
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

// fmix64 is MurmurHash3's finaliser: it spreads every input bit over every
// output bit, which FNV alone does poorly for the last bytes hashed.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb33fe0bb1c53
	h ^= h >> 33
	return h
}
