package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/ticker"
)

// Store keeps monitor specs. Implementations must be safe for concurrent use.
type Store interface {
	Monitors(ctx context.Context) ([]MonitorSpec, error)
	// PutMonitor creates or replaces the monitor of spec.Name.
	PutMonitor(ctx context.Context, spec MonitorSpec) error
	// DeleteMonitor removes a monitor; a missing one is not an error.
	DeleteMonitor(ctx context.Context, name string) error
}

// BaselineSource finds a monitor's baseline and the model it describes: the
// baseline registered with the model version, or one built from a time range
// of the inference table.
type BaselineSource func(ctx context.Context, spec MonitorSpec) (*Baseline, ModelInfo, error)

// AlertHook learns of every alert raised (for the audit trail and metrics).
type AlertHook func(ctx context.Context, spec MonitorSpec, a *Alert)

// Service keeps the monitors: it feeds them observations, closes their
// windows on time, and sends their alerts. The set of monitors is an
// immutable snapshot swapped whole on each change.
type Service struct {
	store     Store
	baselines BaselineSource
	notifier  *Notifier
	onAlert   AlertHook
	log       *slog.Logger
	clock     clock.Clock
	changes   changes.Publisher // nil announces nothing

	fleet    Fleet // nil: a single gateway
	replica  string
	isLeader func() bool // nil: this replica leads
	fs       fleetState

	mu  sync.Mutex // serialises changes
	set atomic.Pointer[monitorSet]

	loop *ticker.Loop // nil until Start
}

// monitorSet is the monitors, by name and by what they watch.
type monitorSet struct {
	byName     map[string]*Monitor
	byEndpoint map[string][]*Monitor
	byModel    map[string][]*Monitor
}

// ServiceOption sets an optional part of a Service.
type ServiceOption func(*Service)

// WithClock runs the service on c: the start of its monitors' windows, the
// loop that closes them and the retries of the monitors that cannot start.
// A nil c, or no WithClock, means the real clock.
func WithClock(c clock.Clock) ServiceOption {
	return func(s *Service) { s.clock = clock.Or(c) }
}

// WithChanges publishes every committed change of a monitor on p.
func WithChanges(p changes.Publisher) ServiceOption {
	return func(s *Service) { s.changes = p }
}

// NewService loads the monitors' specs. They start (their baselines are
// found) in Start, once the models they watch have loaded; until then they
// are listed with StatusStarting.
func NewService(ctx context.Context, store Store, baselines BaselineSource, notifier *Notifier, onAlert AlertHook, log *slog.Logger, opts ...ServiceOption) (*Service, error) {
	s := &Service{store: store, baselines: baselines, notifier: notifier, onAlert: onAlert, log: log, clock: clock.Real()}
	for _, o := range opts {
		o(s)
	}
	specs, err := store.Monitors(ctx)
	if err != nil {
		return nil, fmt.Errorf("load monitors: %w", err)
	}
	set := &monitorSet{byName: map[string]*Monitor{}}
	for _, spec := range specs {
		set.byName[spec.Name] = stopped(spec, errStarting, time.Time{}, 0)
	}
	s.set.Store(set.indexed())
	return s, nil
}

// indexed indexes the running monitors by what they watch.
func (set *monitorSet) indexed() *monitorSet {
	set.byEndpoint, set.byModel = map[string][]*Monitor{}, map[string][]*Monitor{}
	for _, m := range set.byName {
		if m.err != nil {
			continue
		}
		if e := m.spec.Endpoint; e != "" {
			set.byEndpoint[e] = append(set.byEndpoint[e], m)
		} else {
			name := ModelName(m.spec.Model)
			set.byModel[name] = append(set.byModel[name], m)
		}
	}
	return set
}

// ModelName is the model name of a reference "name", "name@alias" or
// "name/version".
func ModelName(ref string) string {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '@' || ref[i] == '/' {
			return ref[:i]
		}
	}
	return ref
}

func (s *Service) build(ctx context.Context, spec MonitorSpec) (*Monitor, error) {
	b, model, err := s.baselines(ctx, spec)
	if err != nil {
		return nil, err
	}
	if s.fleet != nil {
		return newAlignedMonitor(spec, b, model, s.clock.Now())
	}
	return NewMonitor(spec, b, model, s.clock.Now())
}

// Retry backoff of a monitor that cannot start: the first retry is
// retryFirst after the failure, each later wait doubles, up to retryMax.
const (
	retryFirst = time.Second
	retryMax   = time.Minute
)

// start tries to start m, a monitor that is not running, and puts the
// result in its place unless a Put or Delete replaced m meanwhile. A monitor
// that fails again is retried after a longer wait; a new error is logged.
func (s *Service) start(ctx context.Context, m *Monitor) {
	started, err := s.build(ctx, m.spec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set.Load().byName[m.spec.Name] != m {
		return
	}
	if err != nil {
		backoff := min(max(2*m.backoff, retryFirst), retryMax)
		if m.err == nil || errors.Is(m.err, errStarting) || m.err.Error() != err.Error() {
			s.log.Error("drift monitor not started; retrying", "monitor", m.spec.Name, "retry_in", backoff, "err", err)
		}
		s.swap(m.spec.Name, stopped(m.spec, err, s.clock.Now().Add(backoff), backoff))
		return
	}
	if !errors.Is(m.err, errStarting) {
		s.log.Info("drift monitor started", "monitor", m.spec.Name, "model", started.model.Name, "version", started.model.Version)
	}
	s.swap(m.spec.Name, started)
}

// startDue tries to start every monitor that is not running and whose
// retry time has come.
func (s *Service) startDue(ctx context.Context) {
	now := s.clock.Now()
	for _, m := range s.List() {
		if m.err != nil && !now.Before(m.retryAt) {
			s.start(ctx, m)
		}
	}
}

// Watching returns the monitors that watch an endpoint's predictions or a
// model's; it is on the hot path and allocates nothing.
func (s *Service) Watching(endpoint, model string) (byEndpoint, byModel []*Monitor) {
	set := s.set.Load()
	return set.byEndpoint[endpoint], set.byModel[model]
}

// Put creates or replaces a monitor; a replaced monitor starts a new window
// and history.
func (s *Service) Put(ctx context.Context, spec MonitorSpec) (*Monitor, error) {
	m, err := s.build(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := s.commit(ctx, spec.Name, func() error { return s.store.PutMonitor(ctx, spec) }, m); err != nil {
		return nil, err
	}
	return m, s.publish(ctx, spec.Name)
}

// Delete removes a monitor.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := s.commit(ctx, name, func() error { return s.store.DeleteMonitor(ctx, name) }, nil); err != nil {
		return err
	}
	return s.publish(ctx, name)
}

// commit saves a change of monitor name in the store, then puts m in its
// place (removes it when m is nil). Deleting a monitor that does not exist
// fails.
func (s *Service) commit(ctx context.Context, name string, save func() error, m *Monitor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set.Load().byName[name]; !ok && m == nil {
		return notFound("monitor %q not found", name)
	}
	if err := save(); err != nil {
		return fmt.Errorf("save monitor %s: %w", name, err)
	}
	s.swap(name, m)
	return nil
}

// publish announces a committed change of monitor name.
func (s *Service) publish(ctx context.Context, name string) error {
	if s.changes == nil {
		return nil
	}
	if err := s.changes.Publish(ctx, changes.Monitor, name); err != nil {
		return fmt.Errorf("monitor %s changed, but not yet served everywhere: %w", name, err)
	}
	return nil
}

// Reload brings monitor name in line with the store, after a change
// published elsewhere (another replica): a monitor whose spec the store
// holds keeps running; another is rebuilt from the stored spec, or removed
// when the spec is gone.
func (s *Service) Reload(ctx context.Context, name string) error {
	specs, err := s.store.Monitors(ctx)
	if err != nil {
		return fmt.Errorf("reload monitor %s: %w", name, err)
	}
	cur, running := s.set.Load().byName[name]
	for _, spec := range specs {
		if spec.Name != name {
			continue
		}
		if running && reflect.DeepEqual(cur.spec, spec) {
			return nil
		}
		s.mu.Lock()
		s.swap(name, stopped(spec, errStarting, time.Time{}, 0))
		m := s.set.Load().byName[name]
		s.mu.Unlock()
		s.start(ctx, m)
		return nil
	}
	if running {
		s.mu.Lock()
		s.swap(name, nil)
		s.mu.Unlock()
	}
	return nil
}

// ModelChanged restarts, after a change of model name (a version
// registered or deleted, an alias moved), the monitors whose baseline it
// may have changed: those of the model, and those of any endpoint (whose
// heaviest variant may name the model) — see restartChanged.
func (s *Service) ModelChanged(ctx context.Context, name string) error {
	s.restartChanged(ctx, func(spec MonitorSpec) bool { return spec.Endpoint != "" || ModelName(spec.Model) == name })
	return nil
}

// EndpointChanged restarts, after a change of endpoint name's policy, the
// monitors of that endpoint whose baseline it may have changed (see
// restartChanged).
func (s *Service) EndpointChanged(ctx context.Context, name string) error {
	s.restartChanged(ctx, func(spec MonitorSpec) bool { return spec.Endpoint == name })
	return nil
}

// restartChanged restarts the monitors that affected selects and that
// either could not start, or are compared with a registered baseline of a
// model version other than the one their reference resolves to now. (A
// time-range baseline does not change with the model's versions, and
// reading it again would read the table.)
func (s *Service) restartChanged(ctx context.Context, affected func(MonitorSpec) bool) {
	for _, m := range s.List() {
		if !affected(m.spec) {
			continue
		}
		if m.err == nil && m.spec.Baseline != BaselineModel {
			continue
		}
		if m.err == nil {
			_, model, err := s.baselines(ctx, m.spec)
			if err == nil && model == m.model {
				continue
			}
		}
		s.start(ctx, m)
	}
}

func (s *Service) swap(name string, m *Monitor) {
	old := s.set.Load().byName
	next := &monitorSet{byName: make(map[string]*Monitor, len(old)+1)}
	for k, v := range old {
		next.byName[k] = v
	}
	if m == nil {
		delete(next.byName, name)
	} else {
		next.byName[name] = m
	}
	s.set.Store(next.indexed())
}

// Get returns the named monitor.
func (s *Service) Get(name string) (*Monitor, error) {
	m, ok := s.set.Load().byName[name]
	if !ok {
		return nil, notFound("monitor %q not found", name)
	}
	return m, nil
}

// List returns every monitor, ordered by name.
func (s *Service) List() []*Monitor {
	set := s.set.Load()
	out := make([]*Monitor, 0, len(set.byName))
	for _, m := range set.byName {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// Batch judges observations from the past (rows of the inference table) as
// one window of the named monitor, without touching its live windows.
func (s *Service) Batch(ctx context.Context, name string, start, end time.Time, feed func(observe func(features, predictions map[string]any)) error) (*WindowReport, error) {
	live, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	if live.err != nil {
		return nil, &causeError{msg: fmt.Sprintf("monitor %q is not running: %v", name, live.err), cause: live.err}
	}
	spec := live.Spec()
	spec.Cooldown = 0
	m, err := NewMonitor(spec, live.baseline, live.model, start)
	if err != nil {
		return nil, err
	}
	if err := feed(m.Observe); err != nil {
		return nil, err
	}
	r, _ := m.Evaluate(end, true)
	r.Alerted, r.Alert = false, nil // a batch run judges the past; it alerts no one
	return r, nil
}

// Start starts the monitors loaded from the store, which needs the models
// they watch to be loaded, then runs the loop that closes windows on time
// and retries the monitors that could not start; Close stops it. A monitor
// that cannot start stays listed with StatusError and its error.
func (s *Service) Start(ctx context.Context, tick time.Duration) {
	s.startDue(ctx)
	s.loop = ticker.EveryOn(s.clock, tick, "drift monitors", s.log, s.Tick)
}

// Close stops the loop and waits for it.
func (s *Service) Close() {
	s.loop.Stop()
	s.loop = nil
}

// Tick tries again to start the monitors that could not start and whose
// wait is over (a second after the first failure, doubling up to a minute),
// closes every window whose time is up, and sends the alerts they raise.
// With a fleet (see WithFleet), it closes the windows whose time is up and
// publishes the windows' snapshots instead; on the leader, it also judges
// the fleet's windows that are due and sends their alerts. The loop calls
// it; tests may too.
func (s *Service) Tick(ctx context.Context) {
	s.startDue(ctx)
	if s.fleet != nil {
		s.fleetTick(ctx)
		return
	}
	for _, m := range s.List() {
		r, ok := m.Evaluate(s.clock.Now(), false)
		if !ok || !r.Alerted || r.Alert == nil {
			continue
		}
		spec := m.Spec()
		s.log.Warn("drift detected", "monitor", spec.Name, "drifted", len(r.Alert.Drifted), "window_start", r.Start, "window_end", r.End)
		if s.onAlert != nil {
			s.onAlert(ctx, spec, r.Alert)
		}
		if spec.Webhook.URL != "" {
			if err := s.notifier.Notify(spec.Webhook, r.Alert); err != nil {
				s.log.Error("drift alert not sent", "monitor", spec.Name, "err", err)
			}
		}
	}
}
