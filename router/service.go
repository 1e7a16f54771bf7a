package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/ticker"
	"github.com/mlgate/mlgate/registry"
)

// Revision is one entry of an endpoint's history: the endpoint as a change
// left it, who made the change, and what it was.
type Revision struct {
	Revision int       `json:"revision"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Policy   Policy    `json:"policy"`
	Canary   *Canary   `json:"canary,omitempty"`
}

// Store keeps endpoints and their histories. Implementations must be safe for
// concurrent use.
type Store interface {
	// Endpoints returns every endpoint.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// Save stores e, replacing the endpoint of that name, and appends r to its
	// history, atomically, provided e follows the stored endpoint: the store
	// holds that endpoint at revision e.Revision-1, or holds none and
	// e.Revision is 1. Otherwise it stores nothing and returns an error
	// matching ErrConflict (see RevisionConflict), so that of two changes
	// made from the same revision, on any replicas, one is saved and the
	// other refused.
	Save(ctx context.Context, e Endpoint, r Revision) error
	// Delete removes the endpoint and its history; a missing one is not an
	// error.
	Delete(ctx context.Context, name string) error
	// History returns the endpoint's revisions, oldest first.
	History(ctx context.Context, name string) ([]Revision, error)
}

// Models is what the router needs of the model side.
type Models interface {
	// Check reports whether ref names a model version that can serve; its
	// errors say why not.
	Check(ctx context.Context, ref ModelRef) error
	// Promote points alias at the version ref resolves to, on behalf of
	// actor; force moves a protected alias past the status it requires (see
	// CheckPromotion). A refusal matches ErrConflict.
	Promote(ctx context.Context, actor string, ref ModelRef, alias string, force bool) error
	// CheckPromotion reports whether the version ref resolves to may take
	// alias's place: be pointed at by it, or serve instead of a variant
	// that refers to it. A protected alias refuses a version without the
	// validation status it requires with an error matching ErrConflict
	// that names both statuses; a ref that resolves to nothing gives the
	// error Check gives.
	CheckPromotion(ctx context.Context, ref ModelRef, alias string) error
}

// Auditor records a change in the audit trail.
type Auditor func(ctx context.Context, actor, action, endpoint string, before, after any) error

// Audit actions.
const (
	ActionCreate        = "create_endpoint"
	ActionSetPolicy     = "set_policy"
	ActionSetWeights    = "set_weights"
	ActionDelete        = "delete_endpoint"
	ActionCanaryStart   = "canary_start"
	ActionCanaryAdvance = "canary_advance"
	ActionCanaryPromote = "canary_promote"
	ActionCanaryRevert  = "canary_rollback"
	ActionCanaryPause   = "canary_pause"
	ActionCanaryResume  = "canary_resume"
	ActionCanaryAbort   = "canary_abort"
)

// actorCanary is the audit actor of the changes the canary controller makes.
const actorCanary = "canary-controller"

// Service keeps the endpoints: their routes, behind an atomically swapped
// snapshot that requests read without locks, their persistence and history,
// and the controller that drives canaries.
type Service struct {
	store  Store
	models Models
	audit  Auditor
	log    *slog.Logger
	clock  clock.Clock
	// changes announces every committed change of an endpoint; nil
	// announces none.
	changes changes.Publisher

	// fleet, when not nil, holds the figures every replica publishes;
	// replica is this one's id in it.
	fleet   Fleet
	replica string
	// isLeader reports whether this replica runs the canary controller's
	// judgements; nil means always.
	isLeader func() bool

	mu     sync.Mutex // serialises changes
	routes atomic.Pointer[map[string]*Route]

	loop      *ticker.Loop    // nil until Start
	publisher *ticker.Loop    // nil until Start, and without a fleet
	srm       map[string]bool // endpoints flagged, owned by the controller
	// publishFailing is set while publications fail, owned by the
	// publisher, so that an outage is logged once.
	publishFailing bool
}

// ServiceOption sets an optional part of a Service.
type ServiceOption func(*Service)

// WithClock runs the service on c: the times its changes are made at, the
// canary controller's ticks and the canary intervals they judge. A nil c, or
// no WithClock, means the real clock.
func WithClock(c clock.Clock) ServiceOption {
	return func(s *Service) { s.clock = clock.Or(c) }
}

// WithChanges publishes every committed change of an endpoint on p.
func WithChanges(p changes.Publisher) ServiceOption {
	return func(s *Service) { s.changes = p }
}

// Fleet holds the figures that the replicas of a fleet publish, so that
// each can read the others'. Implementations must be safe for concurrent use.
type Fleet interface {
	// Publish stores this replica's latest figures of the endpoints'
	// current revisions, replacing what it published before of those
	// revisions. It returns an error if the figures could not be stored.
	Publish(ctx context.Context, replica string, figures []EndpointFigures) error
	// Figures returns every replica's latest figures of one revision of an
	// endpoint, by replica; none (and no error) when no replica published
	// that revision. It returns an error if the figures could not be read.
	Figures(ctx context.Context, endpoint string, revision int) (map[string]StatsSnapshot, error)
}

// EndpointFigures are one replica's figures of one revision of an endpoint.
type EndpointFigures struct {
	Endpoint string
	Revision int
	Stats    StatsSnapshot
}

// FleetFigures are the figures of an endpoint's revision over the fleet.
type FleetFigures struct {
	// Endpoint is the endpoint, at the revision counted.
	Endpoint Endpoint
	// Stats are every replica's figures merged: this replica's live ones
	// and the others' as they last published them.
	Stats StatsSnapshot
	// Replicas holds each replica's figures, by replica id; nil without a
	// fleet.
	Replicas map[string]StatsSnapshot
}

// FleetPublishInterval is how often a service with a fleet publishes its
// figures; FleetCloseTimeout bounds the last publication, on Close.
const (
	FleetPublishInterval = time.Second
	FleetCloseTimeout    = 2 * time.Second
)

// WithFleet makes the service replica replica of a fleet: Start also
// publishes its figures on f every FleetPublishInterval (and once more on
// Close), and canaries, sample ratio mismatch and Figures count the whole
// fleet's requests, each replica's figures of the endpoint's current
// revision merged.
func WithFleet(f Fleet, replica string) ServiceOption {
	return func(s *Service) { s.fleet, s.replica = f, replica }
}

// WithLeader makes the controller judge canaries and sample ratio mismatch
// only while isLeader reports true, so that one replica of a fleet decides.
// Without WithLeader the service always judges.
func WithLeader(isLeader func() bool) ServiceOption {
	return func(s *Service) { s.isLeader = isLeader }
}

// NewService loads the endpoints.
func NewService(ctx context.Context, store Store, models Models, audit Auditor, log *slog.Logger, opts ...ServiceOption) (*Service, error) {
	s := &Service{store: store, models: models, audit: audit, log: log, clock: clock.Real(), srm: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	if s.fleet != nil && s.replica == "" {
		return nil, invalid("fleet: a replica id is required")
	}
	eps, err := store.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("load endpoints: %w", err)
	}
	routes := make(map[string]*Route, len(eps))
	for _, e := range eps {
		r, err := NewRoute(e)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
		}
		routes[e.Name] = r
	}
	s.routes.Store(&routes)
	return s, nil
}

// Route returns the named endpoint's route, for a request.
func (s *Service) Route(name string) (*Route, bool) {
	r, ok := (*s.routes.Load())[name]
	return r, ok
}

// Routes returns every route, ordered by endpoint name.
func (s *Service) Routes() []*Route {
	m := *s.routes.Load()
	out := make([]*Route, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint() < out[j].Endpoint() })
	return out
}

// Get returns the named endpoint and its route.
func (s *Service) Get(name string) (Endpoint, *Route, error) {
	r, ok := s.Route(name)
	if !ok {
		return Endpoint{}, nil, notFound("endpoint %q not found", name)
	}
	return r.Spec(), r, nil
}

// History returns the named endpoint's revisions.
func (s *Service) History(ctx context.Context, name string) ([]Revision, error) {
	if _, ok := s.Route(name); !ok {
		return nil, notFound("endpoint %q not found", name)
	}
	return s.store.History(ctx, name)
}

// resolve checks model references against the models.
func (s *Service) resolve(ctx context.Context) func(ModelRef) error {
	return func(ref ModelRef) error { return s.models.Check(ctx, ref) }
}

// Put creates the endpoint or replaces its policy; it reports whether it
// created it. It is refused while a canary is active.
func (s *Service) Put(ctx context.Context, actor, name string, p Policy) (Endpoint, bool, error) {
	if err := p.Check(s.resolve(ctx)); err != nil {
		return Endpoint{}, false, err
	}
	var created bool
	e, err := s.change(ctx, actor, name, func(old *Endpoint) (Endpoint, string, error) {
		created = old == nil
		if created {
			e, err := NewEndpoint(name, p, s.clock.Now())
			return e, ActionCreate, err
		}
		e, err := SetPolicy(*old, p, s.clock.Now())
		return e, ActionSetPolicy, err
	})
	return e, created, err
}

// SetWeights changes the weights of the named variants.
func (s *Service) SetWeights(ctx context.Context, actor, name string, weights map[string]int) (Endpoint, error) {
	return s.change(ctx, actor, name, func(old *Endpoint) (Endpoint, string, error) {
		if old == nil {
			return Endpoint{}, "", notFound("endpoint %q not found", name)
		}
		e, err := SetWeights(*old, weights, s.clock.Now())
		return e, ActionSetWeights, err
	})
}

// StartCanary starts a canary of spec on the endpoint.
func (s *Service) StartCanary(ctx context.Context, actor, name string, spec CanarySpec) (Endpoint, error) {
	if err := spec.Check(s.resolve(ctx)); err != nil {
		return Endpoint{}, err
	}
	return s.change(ctx, actor, name, func(old *Endpoint) (Endpoint, string, error) {
		if old == nil {
			return Endpoint{}, "", notFound("endpoint %q not found", name)
		}
		e, err := StartCanary(*old, spec, s.clock.Now())
		if err != nil {
			return Endpoint{}, "", err
		}
		if err := s.checkPromotion(ctx, e.Canary); err != nil {
			return Endpoint{}, "", fmt.Errorf("endpoint %s: a canary of %s could not be promoted: %w", name, spec.Model, err)
		}
		return e, ActionCanaryStart, nil
	})
}

// checkPromotion reports whether c's model may be promoted: take the place
// of every alias the promotion stands in for (see promotionAliases). A
// refusal matches ErrConflict and says why.
func (s *Service) checkPromotion(ctx context.Context, c *Canary) error {
	ref, err := ParseRef(c.Spec.Model)
	if err != nil {
		return err
	}
	for _, alias := range promotionAliases(c) {
		if err := s.models.CheckPromotion(ctx, ref, alias); err != nil {
			return err
		}
	}
	return nil
}

// promotionAliases lists, once each, the aliases whose place a promotion
// of c takes: the alias it moves (Spec.PromoteAlias), and those of the
// baseline variants it replaces, a bare model name standing for champion,
// which it serves.
func promotionAliases(c *Canary) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	add(c.Spec.PromoteAlias)
	for _, v := range c.Baseline {
		ref, err := ParseRef(v.Model)
		switch {
		case err != nil:
		case ref.Alias != "":
			add(ref.Alias)
		case ref.Version == 0:
			add(registry.AliasChampion)
		}
	}
	return out
}

// CanaryCommand applies a person's command to the endpoint's canary: pause,
// resume, promote or abort. A promotion that a protected alias refuses (see
// Models.CheckPromotion) is refused with its error, matching ErrConflict,
// unless force is set: then it is made, the alias moved past its
// protection, and the canary's reason says so. Force is for promote only;
// the caller decides who may use it.
func (s *Service) CanaryCommand(ctx context.Context, actor, name, command string, force bool) (Endpoint, error) {
	if force && command != "promote" {
		return Endpoint{}, invalid("force: applies to the promote command only, not %q", command)
	}
	e, err := s.change(ctx, actor, name, func(old *Endpoint) (Endpoint, string, error) {
		if old == nil {
			return Endpoint{}, "", notFound("endpoint %q not found", name)
		}
		now := s.clock.Now()
		switch command {
		case "pause":
			e, err := PauseCanary(*old, now)
			return e, ActionCanaryPause, err
		case "resume":
			e, err := ResumeCanary(*old, now)
			return e, ActionCanaryResume, err
		case "promote":
			e, err := PromoteCanary(*old, "promoted by "+actor, now)
			if err != nil {
				return Endpoint{}, "", err
			}
			if err := s.checkPromotion(ctx, old.Canary); err != nil {
				if !force || !errors.Is(err, ErrConflict) {
					return Endpoint{}, "", fmt.Errorf("endpoint %s: the canary cannot be promoted: %w; abort it, or promote it once the version qualifies", name, err)
				}
				e.Canary.Reason += ", forced past: " + err.Error()
			}
			return e, ActionCanaryPromote, nil
		case "abort":
			e, err := AbortCanary(*old, "aborted by "+actor, now)
			return e, ActionCanaryAbort, err
		}
		return Endpoint{}, "", invalid("unknown canary command %q (want pause, resume, promote or abort)", command)
	})
	if err == nil && command == "promote" {
		err = s.promoteAlias(ctx, actor, e, force)
	}
	return e, err
}

// Delete removes the endpoint.
func (s *Service) Delete(ctx context.Context, actor, name string) error {
	r, err := s.delete(ctx, name)
	if err != nil {
		return err
	}
	return errors.Join(s.audit(ctx, actor, ActionDelete, name, r.Spec(), nil), s.publish(ctx, name))
}

func (s *Service) delete(ctx context.Context, name string) (*Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.Route(name)
	if !ok {
		// Perhaps created on another replica a moment ago.
		if _, err := s.reload(ctx, name); err != nil {
			return nil, err
		}
		if r, ok = s.Route(name); !ok {
			return nil, notFound("endpoint %q not found", name)
		}
	}
	if err := s.store.Delete(ctx, name); err != nil {
		return nil, fmt.Errorf("delete endpoint %s: %w", name, err)
	}
	s.swap(name, nil)
	return r, nil
}

// publish announces a committed change of endpoint name.
func (s *Service) publish(ctx context.Context, name string) error {
	if s.changes == nil {
		return nil
	}
	if err := s.changes.Publish(ctx, changes.Endpoint, name); err != nil {
		return fmt.Errorf("endpoint %s changed, but not yet served everywhere: %w", name, err)
	}
	return nil
}

// Reload brings the route of endpoint name in line with the store, after a
// change published elsewhere (another replica): a route whose revision the
// store holds is kept, with its stats; another is rebuilt, or removed when
// the endpoint is gone. The change this service made itself is already in
// place.
func (s *Service) Reload(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.reload(ctx, name)
	return err
}

// reload does Reload's work, s.mu held, and returns the endpoint as stored,
// nil when there is none.
func (s *Service) reload(ctx context.Context, name string) (*Endpoint, error) {
	eps, err := s.store.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("reload endpoint %s: %w", name, err)
	}
	cur, ok := s.Route(name)
	for _, e := range eps {
		if e.Name != name {
			continue
		}
		if !ok || cur.Spec().Revision != e.Revision {
			r, err := NewRoute(e)
			if err != nil {
				return nil, fmt.Errorf("reload endpoint %s: %w", name, err)
			}
			s.swap(name, r)
		}
		return &e, nil
	}
	if ok {
		s.swap(name, nil)
	}
	return nil, nil
}

// change applies fn to the named endpoint (nil when it does not exist yet),
// saves the result with a history entry, swaps its route in, audits the
// change with the endpoint before and after, and publishes it.
func (s *Service) change(ctx context.Context, actor, name string, fn func(old *Endpoint) (Endpoint, string, error)) (Endpoint, error) {
	e, err := s.commit(ctx, actor, name, fn)
	if err != nil {
		return e, err
	}
	return e, s.publish(ctx, name)
}

// commit applies fn to the endpoint as this service last saw it, saves the
// result and audits it. The store refuses the save if the endpoint changed
// meanwhile (on another replica, or one whose change this replica has not
// reloaded yet), and fn may find no endpoint that another replica created a
// moment ago: then commit reloads the endpoint and applies fn once more to
// it as stored. A second refusal is returned, matching ErrConflict.
func (s *Service) commit(ctx context.Context, actor, name string, fn func(old *Endpoint) (Endpoint, string, error)) (Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old *Endpoint
	if r, ok := s.Route(name); ok {
		e := r.Spec()
		old = &e
	}
	e, action, err := s.save(ctx, actor, old, fn)
	var ref refused
	if errors.As(err, &ref) || (old == nil && errors.Is(err, ErrNotFound)) {
		if old, err = s.reload(ctx, name); err != nil {
			return Endpoint{}, err
		}
		e, action, err = s.save(ctx, actor, old, fn)
		if errors.As(err, &ref) {
			return Endpoint{}, conflict("endpoint %s changed meanwhile, on another replica; retry the change (%v)", name, ref.err)
		}
	}
	if err != nil {
		return Endpoint{}, err
	}
	var before any
	if old != nil {
		before = old
	}
	if err := s.audit(ctx, actor, action, name, before, e); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s changed, but recording it in the audit trail failed: %w", name, err)
	}
	return e, nil
}

// refused is the store's refusal to save a revision that does not follow
// the stored one.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }

// save applies fn to old, saves the result with a history entry, and swaps
// its route in. A refusal of the store is a refused error.
func (s *Service) save(ctx context.Context, actor string, old *Endpoint, fn func(old *Endpoint) (Endpoint, string, error)) (Endpoint, string, error) {
	e, action, err := fn(old)
	if err != nil {
		return Endpoint{}, "", err
	}
	r, err := NewRoute(e)
	if err != nil {
		return Endpoint{}, "", err
	}
	rev := Revision{Revision: e.Revision, Time: e.UpdatedAt, Actor: actor, Action: action, Policy: e.Policy, Canary: e.Canary}
	err = s.store.Save(ctx, e, rev)
	switch {
	case errors.Is(err, ErrConflict):
		return Endpoint{}, "", refused{err}
	case err != nil:
		return Endpoint{}, "", fmt.Errorf("save endpoint %s: %w", e.Name, err)
	}
	s.swap(e.Name, r)
	return e, action, nil
}

// swap replaces the route of name (removes it when r is nil) in a new
// snapshot.
func (s *Service) swap(name string, r *Route) {
	old := *s.routes.Load()
	next := make(map[string]*Route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if r == nil {
		delete(next, name)
	} else {
		next[name] = r
	}
	s.routes.Store(&next)
}

func (s *Service) promoteAlias(ctx context.Context, actor string, e Endpoint, force bool) error {
	c := e.Canary
	if c == nil || c.Spec.PromoteAlias == "" {
		return nil
	}
	ref, err := ParseRef(c.Spec.Model)
	if err != nil {
		return err
	}
	if err := s.models.Promote(ctx, actor, ref, c.Spec.PromoteAlias, force); err != nil {
		return fmt.Errorf("endpoint %s: canary promoted, but moving alias %s to %s failed: %w", e.Name, c.Spec.PromoteAlias, c.Spec.Model, err)
	}
	return nil
}

// Start runs the controller: every tick it judges the running canaries and
// checks every endpoint for a sample ratio mismatch. With a fleet it also
// publishes this replica's figures every FleetPublishInterval. Both run on
// the service's clock. Close stops them.
func (s *Service) Start(tick time.Duration) {
	s.loop = ticker.EveryOn(s.clock, tick, "canary controller", s.log, s.Tick)
	if s.fleet != nil {
		s.publisher = ticker.EveryOn(s.clock, FleetPublishInterval, "fleet figures", s.log, s.publishLoop)
	}
}

// Close stops the controller and the publisher and waits for them; with a
// fleet it then publishes the figures once more, within FleetCloseTimeout,
// so that the requests this replica answered last still count.
func (s *Service) Close() {
	s.loop.Stop()
	s.loop = nil
	if s.publisher == nil {
		return
	}
	s.publisher.Stop()
	s.publisher = nil
	ctx, cancel := context.WithTimeout(context.Background(), FleetCloseTimeout)
	defer cancel()
	if err := s.PublishFigures(ctx); err != nil {
		s.log.Warn("the last figures of this replica were not published", "err", err)
	}
}

// publishLoop publishes the figures once, logging when publication starts
// failing and when it recovers.
func (s *Service) publishLoop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, FleetPublishInterval)
	defer cancel()
	err := s.PublishFigures(ctx)
	switch {
	case err != nil && !s.publishFailing:
		s.log.Warn("publishing this replica's figures to the fleet failed; retrying every second", "err", err)
	case err == nil && s.publishFailing:
		s.log.Info("publishing this replica's figures to the fleet works again")
	}
	s.publishFailing = err != nil
}

// PublishFigures publishes every route's figures on the fleet, as replica
// WithFleet named; it does nothing without a fleet. The publisher Start runs
// calls it; tests may too.
func (s *Service) PublishFigures(ctx context.Context) error {
	if s.fleet == nil {
		return nil
	}
	routes := s.Routes()
	figures := make([]EndpointFigures, len(routes))
	for i, r := range routes {
		figures[i] = EndpointFigures{Endpoint: r.Endpoint(), Revision: r.Revision(), Stats: r.Stats().Snapshot()}
	}
	if err := s.fleet.Publish(ctx, s.replica, figures); err != nil {
		return fmt.Errorf("publish the figures of replica %s: %w", s.replica, err)
	}
	return nil
}

// Figures returns the named endpoint's figures over the fleet: this
// replica's live figures of its current revision merged with every other
// replica's last published ones of that revision. Without a fleet they are
// this replica's. It returns an error matching ErrNotFound for an unknown
// endpoint, and one matching ErrUnavailable when the fleet cannot be read.
func (s *Service) Figures(ctx context.Context, name string) (FleetFigures, error) {
	r, ok := s.Route(name)
	if !ok {
		return FleetFigures{}, notFound("endpoint %q not found", name)
	}
	f, err := s.figures(ctx, r)
	if err != nil {
		return FleetFigures{}, unavailable("%v; retry shortly", err)
	}
	return f, nil
}

// figures merges the route's live figures with the other replicas'.
func (s *Service) figures(ctx context.Context, r *Route) (FleetFigures, error) {
	local := r.Stats().Snapshot()
	f := FleetFigures{Endpoint: r.Spec(), Stats: local}
	if s.fleet == nil {
		return f, nil
	}
	others, err := s.fleet.Figures(ctx, r.Endpoint(), r.Revision())
	if err != nil {
		return FleetFigures{}, fmt.Errorf("read the fleet's figures of endpoint %s revision %d: %w", r.Endpoint(), r.Revision(), err)
	}
	// This replica's own published copy lags its live figures: left out.
	f.Replicas = map[string]StatsSnapshot{s.replica: local}
	snaps := []StatsSnapshot{local}
	for _, id := range slices.Sorted(maps.Keys(others)) {
		if id == s.replica {
			continue
		}
		f.Replicas[id] = others[id]
		snaps = append(snaps, others[id])
	}
	f.Stats = MergeSnapshots(snaps...)
	return f, nil
}

// Tick judges every running canary once and checks for sample ratio
// mismatches, on the fleet's figures, if this replica is the leader. When
// the fleet's figures of an endpoint cannot be read it logs that and holds
// the endpoint's canary until a later tick. The controller calls Tick;
// tests may too.
func (s *Service) Tick(ctx context.Context) {
	if s.isLeader != nil && !s.isLeader() {
		// A leader to be starts over: it logs the flags it finds.
		clear(s.srm)
		return
	}
	for _, r := range s.Routes() {
		e := r.Spec()
		f, err := s.figures(ctx, r)
		if err != nil {
			s.log.Warn("canary and sample ratio checks hold: no fleet figures", "endpoint", e.Name, "err", err)
			continue
		}
		snap := f.Stats
		s.checkSRM(e.Name, snap)
		if e.Canary == nil || e.Canary.State != CanaryRunning {
			continue
		}
		canary, baseline, ok := snap.CanaryFigures()
		if !ok {
			continue
		}
		d := e.Canary.Evaluate(canary, baseline, s.clock.Now())
		if d.Action == Hold {
			continue
		}
		if err := s.decide(ctx, e, d); err != nil {
			s.log.Error("canary step failed", "endpoint", e.Name, "action", d.Action.String(), "err", err)
		}
	}
}

func (s *Service) decide(ctx context.Context, e Endpoint, d Decision) error {
	if d.Action == Promote {
		err := s.checkPromotion(ctx, e.Canary)
		switch {
		case errors.Is(err, ErrConflict):
			// The version lost the status a protected alias requires
			// since the canary started: it rolls back, saying why.
			d = Decision{Action: RollBack, Reason: "promotion refused: " + err.Error(), Figures: d.Figures}
		case err != nil:
			return fmt.Errorf("check the promotion of the canary: %w", err)
		}
	}
	action := map[Action]string{Advance: ActionCanaryAdvance, Promote: ActionCanaryPromote, RollBack: ActionCanaryRevert}[d.Action]
	next, err := s.change(ctx, actorCanary, e.Name, func(old *Endpoint) (Endpoint, string, error) {
		if old == nil || old.Revision != e.Revision {
			return Endpoint{}, "", errStale
		}
		n, err := ApplyCanary(*old, d, s.clock.Now())
		return n, action, err
	})
	if errors.Is(err, errStale) || errors.Is(err, ErrConflict) {
		// Changed meanwhile, here or by another replica (a second leader,
		// for a moment): the decision is dropped, and the endpoint as it
		// now is judged again at the next tick.
		s.log.Info("canary decision dropped: the endpoint changed since it was judged", "endpoint", e.Name, "action", d.Action.String())
		return nil
	}
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if d.Action == RollBack {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "canary "+d.Action.String(), "endpoint", e.Name, "reason", d.Reason, "figures", d.Figures)
	if d.Action == Promote {
		return s.promoteAlias(ctx, actorCanary, next, false)
	}
	return nil
}

var errStale = errors.New("endpoint changed since it was judged")

// checkSRM logs when an endpoint's sample ratio mismatch flag flips.
func (s *Service) checkSRM(name string, snap StatsSnapshot) {
	if snap.SRM == s.srm[name] {
		return
	}
	s.srm[name] = snap.SRM
	if snap.SRM {
		s.log.Warn("sample ratio mismatch: the variants' shares of requests do not fit their weights", "endpoint", name, "p_value", snap.SRMPValue, "requests", snap.Requests)
	} else {
		s.log.Info("sample ratio mismatch cleared", "endpoint", name, "p_value", snap.SRMPValue)
	}
}

// RegisterMetrics publishes, per endpoint, whether its split shows a sample
// ratio mismatch (mlgate_endpoint_srm, 1 or 0) and the test's p-value.
func (s *Service) RegisterMetrics(m metric.Meter) error {
	flag, err := m.Int64ObservableGauge("mlgate_endpoint_srm",
		metric.WithDescription("1 when the endpoint's requests per variant do not fit its weights (chi-square p < 0.001), else 0."))
	if err != nil {
		return err
	}
	pValue, err := m.Float64ObservableGauge("mlgate_endpoint_srm_p_value",
		metric.WithDescription("p-value of the chi-square test of the endpoint's requests per variant against its weights."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, r := range s.Routes() {
			snap := r.Stats().Snapshot()
			attrs := metric.WithAttributes(attribute.String("endpoint", r.Endpoint()))
			var v int64
			if snap.SRM {
				v = 1
			}
			o.ObserveInt64(flag, v, attrs)
			o.ObserveFloat64(pValue, snap.SRMPValue, attrs)
		}
		return nil
	}, flag, pValue)
	return err
}
