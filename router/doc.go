// Package router holds endpoints and their traffic policies, the domain core
// of routing: which variant (model reference) serves a request, what each
// variant's traffic looked like, and how a canary moves through its steps. It
// does no I/O and runs no model; serving composes it with the registry and
// the model sessions.
//
// # Endpoints and policies
//
// An Endpoint owns a Policy: up to 16 variants, each a model reference
// ("name", "name@alias" or "name/version") with an integer weight, an
// optional sticky entity key, and an optional shadow model that gets a copy
// of a percentage of requests. DecodePolicy and Policy.Check refuse what is
// malformed with errors that match ErrInvalid and name the field. Endpoints
// are values: every change (SetPolicy, SetWeights, StartCanary, ApplyCanary,
// ...) returns a new Endpoint with Revision one higher and UpdatedAt set,
// and never modifies its input, so a reader holding the old one is safe.
//
// # Routing
//
// NewRoute compiles an Endpoint into an immutable Route, which the caller
// keeps behind an atomic.Pointer and swaps whole on each revision. A request
// with a value for the sticky entity is routed by Route.Choose, weighted
// rendezvous hashing: every variant draws a pseudo-random number from a fixed
// hash of (salt, unit, variant name) and the one with the best weighted score
// wins. So the same unit always gets the same variant, on every replica;
// each variant gets its weight's share of units; and when weights change only
// the fewest units needed move — a canary going from 10% to 25% takes 15% of
// units from the baseline and gives none back. A new Endpoint.Salt reshuffles
// all assignments. Without a unit, the variant is drawn at random by weight.
// A header may pin a variant by name (Route.Variant), even one of weight 0.
//
// # Stats
//
// Each Route carries Stats: per-variant request, error and latency counts (a
// log-linear histogram, 8 buckets per octave from 1µs to 34s, good for p50
// and p99 within about 6%), running prediction means, and shadow agreement,
// all atomics with no lock on the hot path. A StatsSnapshot reports rates,
// quantiles, observed shares, and a sample ratio mismatch test: the p-value
// of a chi-square goodness-of-fit test of the requests per variant against
// the weights (variants of weight 0 left out), flagged as SRM when below
// 0.001 over at least 100 requests. StatsSnapshot.Sub gives one interval's
// figures.
//
// # Canaries
//
// StartCanary adds a variant named "canary" at the first step's weight
// (per cent); the other variants share the rest in proportion to their
// weights, rounded by largest remainder so that all weights sum to 100: a
// 90/10 split at a 25% step becomes 68/7/25. Their weights from before are
// kept in Canary.Baseline. The canary is a state machine with no goroutine
// and no clock of its own: the caller calls Canary.Evaluate with the figures
// since the step started and the time, and applies the Decision with
// ApplyCanary.
//
//	running ──Advance──► running (next step) ──...──Promote──► promoted
//	   │  ▲                    │
//	 Pause Resume          RollBack (a rule broken) ──► rolled_back
//	   ▼  │
//	 paused ──Abort──► aborted     (Abort and Promote work from running too)
//
// A step holds until its interval is over and the canary has min_requests
// requests; then any broken rule (error rate, p99 latency, prediction shift)
// rolls it back, with the rule and the numbers in Canary.Reason and
// Canary.Figures, and otherwise it advances, or is promoted after the last
// step (always 100%). Promotion leaves one variant serving the canary's model,
// named as the heaviest baseline variant was; moving the promote alias is the
// caller's part. A promotion must not put a version without the validation
// status a protected alias requires (registry.protected_aliases) in that
// alias's place: the alias it moves, or a baseline variant that refers to it
// (a bare model name stands for champion). Models.CheckPromotion judges it;
// a canary that would is refused at start, and one whose version loses the
// status while it runs is rolled back at promotion, Canary.Reason saying
// "promotion refused: " and why; a person's promote command is refused
// likewise unless forced. Rolling back restores the baseline weights and
// keeps the canary variant at weight 0; aborting removes it. SetWeights is
// refused with ErrConflict while a canary runs (pause or abort it first),
// SetPolicy while one is running or paused.
//
// # A fleet
//
// A Service keeps its endpoints in a Store, which several replicas may
// share. Store.Save saves only the revision that follows the stored one, so
// a change made from a state another replica has changed meanwhile is
// refused; the Service then reloads the endpoint and makes the change once
// more on it, and a second refusal is returned as ErrConflict. A canary
// decision taken on a changed endpoint is dropped and judged again, so a
// promotion or rollback is committed, and audited, once.
//
// With WithFleet each replica publishes its figures of every endpoint's
// current revision on a Fleet every FleetPublishInterval; Service.Figures
// and the controller merge them (MergeSnapshots) with the replica's live
// figures, and with WithLeader only the leader judges canaries and sample
// ratio mismatch, on those merged figures.
package router
