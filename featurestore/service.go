package featurestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlgate/mlgate/internal/changes"
)

// SpecUse is a registered model version that reads features through a spec.
type SpecUse struct {
	Model   string
	Version int
	Spec    *Spec
	Inputs  []Input
}

// Service is the feature store: view definitions, the online stores that hold
// their values, and the cache in front of them. The set of views is an
// immutable snapshot swapped whole on each change, so reads take no lock.
type Service struct {
	views        ViewStore
	stores       map[string]OnlineStore
	breakers     map[string]*gobreaker.CircuitBreaker[struct{}] // by store name
	defaultStore string
	timeout      time.Duration // of a read
	writeTimeout time.Duration // of a write, a Prepare, a Drop
	cache        *cache
	metrics      *metrics
	now          func() time.Time
	tracer       trace.Tracer // nil traces nothing
	log          *slog.Logger
	audit        Auditor // nil records nothing

	mu      sync.Mutex // serialises view changes
	set     atomic.Pointer[map[string]*View]
	users   func(ctx context.Context) ([]SpecUse, error)
	changes changes.Publisher
	// unavailable: stores views may not name, and why
	unavailable map[string]string
}

// Options configure a Service.
type Options struct {
	// Stores maps store names ("embedded", "redis", "cassandra") to stores.
	Stores map[string]OnlineStore
	// DefaultStore holds views that name no store.
	DefaultStore string
	// Unavailable maps the names of stores this gateway may not use to why
	// not, which a view naming one is refused with.
	Unavailable map[string]string
	// CacheEntries bounds the cache; 0 disables it.
	CacheEntries int
	// Timeout bounds each read from a store; 0 means DefaultTimeout. A read
	// that runs out of it is answered without the store (degraded) and
	// counts as a failure of the store.
	Timeout time.Duration
	// WriteTimeout bounds each write to a store, and each Prepare and Drop
	// of a view; 0 means DefaultWriteTimeout. A write that runs out of it
	// fails with ErrUnavailable and counts as a failure of the store.
	WriteTimeout time.Duration
	// Breaker configures the circuit breaker in front of each store.
	Breaker Breaker
	// Audit records each change of a view; nil records none.
	Audit Auditor
	// Log receives the errors of failed store calls, which callers see only
	// as ErrUnavailable naming the store; nil logs nothing.
	Log *slog.Logger
	// Meter records the feature store's metrics; nil records none.
	Meter metric.Meter
	// Tracer starts a span ("feature.lookup") for each read from a store;
	// nil traces none.
	Tracer trace.Tracer
	// Users lists the model versions whose feature specs a view change must
	// not break; nil checks none.
	Users func(ctx context.Context) ([]SpecUse, error)
	// Changes announces every committed view change; nil announces none.
	Changes changes.Publisher
}

// The store timeouts an Options that sets none takes: well under a
// request's deadline, so that a hung store costs a caller this much, not
// its whole deadline. A write may carry many rows (limits.max_rows), so it
// gets longer; and preparing a view, which in Cassandra is a schema change
// that waits for the cluster to agree on it (seconds on a busy node), takes
// at least PrepareTimeout.
const (
	DefaultTimeout      = 500 * time.Millisecond
	DefaultWriteTimeout = 5 * time.Second
	PrepareTimeout      = 30 * time.Second
)

// Auditor records a change of a feature view in the audit trail: action is
// one of the Action constants, before and after the view's definitions (nil
// when it did not exist before, or no longer does after). An error means the
// change was made but not recorded.
type Auditor func(ctx context.Context, actor, action, view string, before, after any) error

// Audit actions of view changes.
const (
	ActionCreateView = "create_feature_view"
	ActionChangeView = "change_feature_view"
	ActionDeleteView = "delete_feature_view"
)

// NewService loads the views and returns the service.
func NewService(ctx context.Context, views ViewStore, opts Options) (*Service, error) {
	if why, ok := opts.Unavailable[opts.DefaultStore]; ok {
		return nil, fmt.Errorf("online_store.default: store %q cannot be used: %s", opts.DefaultStore, why)
	}
	if _, ok := opts.Stores[opts.DefaultStore]; !ok {
		return nil, fmt.Errorf("online_store.default: store %q is not configured", opts.DefaultStore)
	}
	c, err := newCache(opts.CacheEntries)
	if err != nil {
		return nil, err
	}
	breakers := make(map[string]*gobreaker.CircuitBreaker[struct{}], len(opts.Stores))
	for name := range opts.Stores {
		breakers[name] = NewBreaker[struct{}](name, opts.Breaker)
	}
	m, err := newMetrics(opts.Meter, breakers)
	if err != nil {
		return nil, err
	}
	s := &Service{views: views, stores: opts.Stores, breakers: breakers, defaultStore: opts.DefaultStore,
		timeout: opts.Timeout, writeTimeout: opts.WriteTimeout, cache: c, metrics: m, now: time.Now,
		tracer: opts.Tracer, log: opts.Log, audit: opts.Audit, users: opts.Users, changes: opts.Changes, unavailable: opts.Unavailable}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultWriteTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	all, err := views.Views(ctx)
	if err != nil {
		return nil, fmt.Errorf("load feature views: %w", err)
	}
	set := make(map[string]*View, len(all))
	for _, v := range all {
		if why, ok := opts.Unavailable[v.Store]; ok {
			return nil, fmt.Errorf("feature view %s is held in store %q, which cannot be used: %s", v.Name, v.Store, why)
		}
		if _, ok := s.stores[v.Store]; !ok {
			return nil, fmt.Errorf("feature view %s is held in store %q, which is not configured (online_store.%s)", v.Name, v.Store, v.Store)
		}
		set[v.Name] = v
		s.metrics.known(v, s.cache.enabled(v))
	}
	s.set.Store(&set)
	return s, nil
}

// View returns the named view.
func (s *Service) View(name string) (*View, error) {
	if v, ok := (*s.set.Load())[name]; ok {
		return v, nil
	}
	return nil, notFound("feature view %q not found", name)
}

// Views returns every view, ordered by name.
func (s *Service) Views() []*View {
	set := *s.set.Load()
	out := make([]*View, 0, len(set))
	for _, v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PutView creates or changes a view. A change may add or remove features and
// change the TTLs; it may not change the entities, the store, or a feature's
// type, and it may not break the feature spec of a registered model version.
// It reports whether the view was created, and records the change in the
// audit trail on behalf of actor. It fails with ErrUnavailable when the
// view's store cannot prepare the view (see WriteRows).
func (s *Service) PutView(ctx context.Context, actor string, v *View) (*View, bool, error) {
	v, created, err := s.putView(ctx, actor, v)
	if v == nil {
		return nil, false, err
	}
	return v, created, errors.Join(err, s.publish(ctx, v.Name))
}

func (s *Service) putView(ctx context.Context, actor string, v *View) (*View, bool, error) {
	if v.Store == "" {
		v.Store = s.defaultStore
	}
	if err := v.Check(); err != nil {
		return nil, false, err
	}
	if why, ok := s.unavailable[v.Store]; ok {
		return nil, false, invalid("view %s: store %q cannot be used: %s", v.Name, v.Store, why)
	}
	if _, ok := s.stores[v.Store]; !ok {
		return nil, false, invalid("view %s: store %q is not configured (configured: %s)", v.Name, v.Store, strings.Join(s.storeNames(), ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := *s.set.Load()
	old, exists := set[v.Name]
	now := s.now().UTC()
	v.CreatedAt, v.UpdatedAt = now, now
	if exists {
		if err := compatible(old, v); err != nil {
			return nil, false, err
		}
		v.CreatedAt = old.CreatedAt
	}
	next := withView(set, v.Name, v)
	if err := s.checkUsers(ctx, next, "changing feature view "+v.Name); err != nil {
		return nil, false, err
	}
	if err := s.prepare(ctx, v); err != nil {
		return nil, false, err
	}
	if err := s.views.PutView(ctx, v); err != nil {
		return nil, false, fmt.Errorf("save view %s: %w", v.Name, err)
	}
	s.set.Store(&next)
	s.cache.purge()
	s.metrics.byView.Clear()
	s.metrics.known(v, s.cache.enabled(v))
	action, before := ActionCreateView, any(nil)
	if exists {
		action, before = ActionChangeView, old
	}
	return v, !exists, s.record(ctx, actor, action, v.Name, before, v)
}

// Reload brings view name in line with the view store after a change
// committed elsewhere (another replica of a fleet): the view is replaced, or
// removed when the store no longer holds it, and the cached rows are let go.
// A view whose definition is unchanged is left as it is, cache and all, so a
// change this service made itself costs one read.
func (s *Service) Reload(ctx context.Context, name string) error {
	all, err := s.views.Views(ctx)
	if err != nil {
		return fmt.Errorf("reload feature view %s: %w", name, err)
	}
	var stored *View
	for _, v := range all {
		if v.Name == name {
			stored = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := *s.set.Load()
	cur, ok := set[name]
	switch {
	case stored == nil && !ok:
		return nil
	case stored != nil && ok && reflect.DeepEqual(cur, stored):
		return nil
	case stored != nil:
		if _, configured := s.stores[stored.Store]; !configured {
			return fmt.Errorf("reload feature view %s: it is held in store %q, which is not configured here", name, stored.Store)
		}
	}
	next := withView(set, name, stored)
	s.set.Store(&next)
	s.cache.purge()
	s.metrics.byView.Clear()
	if stored != nil {
		s.metrics.known(stored, s.cache.enabled(stored))
	}
	return nil
}

// DeleteView removes a view and its values, and records the change in the
// audit trail on behalf of actor. It is refused while a registered model
// version reads one of its features. When the view is removed but its store
// cannot drop its values, it fails with ErrUnavailable.
func (s *Service) DeleteView(ctx context.Context, actor, name string) error {
	deleted, err := s.deleteView(ctx, actor, name)
	if !deleted {
		return err
	}
	return errors.Join(err, s.publish(ctx, name))
}

// publish announces a committed change of view name, once the change no
// longer holds the lock: subscribers compile plans against the views.
func (s *Service) publish(ctx context.Context, name string) error {
	if s.changes == nil {
		return nil
	}
	if err := s.changes.Publish(ctx, changes.View, name); err != nil {
		return fmt.Errorf("feature view %s changed, but not yet served: %w", name, err)
	}
	return nil
}

func (s *Service) deleteView(ctx context.Context, actor, name string) (deleted bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := *s.set.Load()
	v, ok := set[name]
	if !ok {
		return false, notFound("feature view %q not found", name)
	}
	next := withView(set, name, nil)
	if err := s.checkUsers(ctx, next, "deleting feature view "+name); err != nil {
		return false, err
	}
	if err := s.views.DeleteView(ctx, name); err != nil {
		return false, fmt.Errorf("delete view %s: %w", name, err)
	}
	s.set.Store(&next)
	s.cache.purge()
	s.metrics.byView.Clear()
	recorded := s.record(ctx, actor, ActionDeleteView, name, v, nil)
	err = s.call(ctx, v.Store, "drop view "+name, s.writeTimeout, func(ctx context.Context, st OnlineStore) error {
		return st.Drop(ctx, v)
	})
	if err != nil {
		return true, errors.Join(fmt.Errorf("view %s deleted, but its values are still in the store: %w", name, err), recorded)
	}
	return true, recorded
}

// record adds a view change to the audit trail.
func (s *Service) record(ctx context.Context, actor, action, view string, before, after any) error {
	if s.audit == nil {
		return nil
	}
	if err := s.audit(ctx, actor, action, view, before, after); err != nil {
		return fmt.Errorf("feature view %s changed, but recording it in the audit trail failed: %w", view, err)
	}
	return nil
}

func compatible(old, v *View) error {
	if !slices.Equal(old.Entities, v.Entities) {
		return conflict("view %s: entities cannot change (%v to %v); delete the view and create it again", v.Name, old.Entities, v.Entities)
	}
	if old.Store != v.Store {
		return conflict("view %s: store cannot change (%s to %s); delete the view and create it again", v.Name, old.Store, v.Store)
	}
	for _, f := range v.Features {
		if i := old.Feature(f.Name); i >= 0 && old.Features[i].Type != f.Type {
			return conflict("view %s: feature %s cannot change type (%s to %s); give the new feature another name", v.Name, f.Name, old.Features[i].Type, f.Type)
		}
	}
	return nil
}

// withView returns a copy of set with name bound to v, or removed when v is nil.
func withView(set map[string]*View, name string, v *View) map[string]*View {
	next := make(map[string]*View, len(set)+1)
	for k, x := range set {
		next[k] = x
	}
	if v == nil {
		delete(next, name)
	} else {
		next[name] = v
	}
	return next
}

// checkUsers compiles every registered spec against the views the change
// would leave, and refuses the change if one no longer compiles.
func (s *Service) checkUsers(ctx context.Context, views map[string]*View, what string) error {
	if s.users == nil {
		return nil
	}
	uses, err := s.users(ctx)
	if err != nil {
		return fmt.Errorf("list the models using features: %w", err)
	}
	for _, u := range uses {
		if _, err := compile(u.Spec, u.Inputs, views); err != nil {
			return conflict("%s would break model %s version %d: %v", what, u.Model, u.Version, strings.TrimPrefix(err.Error(), "feature_spec."))
		}
	}
	return nil
}

func (s *Service) storeNames() []string {
	names := make([]string, 0, len(s.stores))
	for n := range s.stores {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close closes every store.
func (s *Service) Close() error {
	var errs []error
	for _, st := range s.stores {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
