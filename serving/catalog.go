package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/serving/batching"
	"github.com/mlgate/mlgate/serving/onnx"
)

// ModelSource is what the Catalog needs of the registry.
type ModelSource interface {
	Models(ctx context.Context) ([]*registry.Model, error)
	ArtifactPath(ctx context.Context, v *registry.Version) (string, error)
}

// Loader loads and warms the session of one model file.
type Loader func(path string) (*onnx.Session, error)

// Planner compiles a version's feature spec for the inputs of its session.
type Planner func(spec []byte, inputs []onnx.IO) (*featurestore.Plan, error)

// Catalog holds a loaded, warmed session for every registered version and
// resolves requests to them. What it serves is an immutable snapshot behind an
// atomic pointer: Sync builds a new one and swaps it in whole, so a request
// sees either the old aliases and versions or the new ones, never a mix.
//
// Sessions are reference-counted. A request holds its session from Acquire to
// Release; a session that leaves the catalog (its version was deleted) is
// closed when the last request using it releases it.
type Catalog struct {
	source ModelSource
	load   Loader
	plan   Planner
	log    *slog.Logger

	mu     sync.Mutex // serialises Sync and Close
	snap   atomic.Pointer[snapshot]
	synced atomic.Bool
}

type snapshot struct {
	models map[string]*servedModel
}

type servedModel struct {
	name     string
	versions map[int]*Loaded // loaded versions
	numbers  []int           // loaded version numbers, ascending
	failed   map[int]error   // versions that would not load
	aliases  map[string]int
}

// Loaded is a version with its session, held by a request between Acquire and
// Release. It is immutable.
type Loaded struct {
	Version *registry.Version
	// Ref is "name/version", as answers name the model that served.
	Ref string
	// Plan is the compiled feature spec, nil for a version without one.
	Plan *featurestore.Plan
	// PlanErr says why the feature spec no longer compiles (a feature view
	// changed under it); such a version cannot predict from features.
	PlanErr error
	*session
}

// session is a loaded model file with its reference count: the catalog's own
// reference plus one per request. It closes when the count drops to zero.
type session struct {
	*onnx.Session
	// inputIndex maps an input name to its position in Session.Inputs().
	inputIndex map[string]int
	refs       atomic.Int64
	stats      versionStats
	// batcher, for a version registered with batching, fuses its
	// concurrent runs; nil runs each request alone.
	batcher *batching.Batcher
	// metricAttrs label the version's batching metrics.
	metricAttrs []metric.RecordOption
}

// NewCatalog returns an empty catalog; call Sync to fill it. Sync compiles
// the feature spec of each version with plan; with a nil plan, a version
// that has one cannot predict ("this gateway has no feature store").
func NewCatalog(source ModelSource, load Loader, plan Planner, log *slog.Logger) *Catalog {
	c := &Catalog{source: source, load: load, plan: plan, log: log}
	c.snap.Store(&snapshot{models: map[string]*servedModel{}})
	return c
}

// OnChange rebuilds the catalog after a change of a model (its versions,
// aliases, tags) or of a feature view (the plans compiled from it): it is
// the catalog's subscription to the change hub.
func (c *Catalog) OnChange(ctx context.Context, _ changes.Event) error { return c.Sync(ctx) }

// Ready reports whether the catalog has completed its first Sync.
func (c *Catalog) Ready() bool { return c.synced.Load() }

// Sync brings the catalog in line with the registry: it loads and warms the
// sessions of new versions, then swaps in a snapshot with the current versions
// and aliases, then lets go of the sessions of versions that are gone. A
// version that fails to load is logged and answered with 503 until a later
// Sync loads it, and an alias moved to it stays where it was meanwhile; Sync
// then returns an error matching ErrNotAllLoaded, so that the change hub's
// publisher, or a fleet's change feed, learns that the change is not served
// yet and tries again.
func (c *Catalog) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	models, err := c.source.Models(ctx)
	if err != nil {
		return fmt.Errorf("list models: %w", err)
	}
	old := c.snap.Load()
	next := &snapshot{models: make(map[string]*servedModel, len(models))}
	var failed []error
	kept := map[*session]bool{}
	for _, m := range models {
		sm := &servedModel{
			name:     m.Name,
			versions: make(map[int]*Loaded, len(m.Versions)),
			failed:   map[int]error{},
			aliases:  m.Aliases,
		}
		for _, v := range m.Versions {
			if l := old.loaded(m.Name, v.Version); l != nil && l.Version.UUID == v.UUID {
				// The same file: keep its session, take the version's new tags
				// and compile its spec against the current views.
				sm.add(c.withPlan(&Loaded{Version: v, session: l.session}))
				kept[l.session] = true
				continue
			}
			l, err := c.loadVersion(ctx, v)
			if err != nil {
				sm.failed[v.Version] = err
				continue
			}
			sm.add(c.withPlan(l))
		}
		sm.holdAliases(old.models[m.Name])
		next.models[m.Name] = sm
		for n, err := range sm.failed {
			failed = append(failed, fmt.Errorf("%s version %d: %w", m.Name, n, err))
		}
	}
	c.snap.Store(next)
	c.synced.Store(true)
	old.releaseExcept(kept)
	if len(failed) > 0 {
		return fmt.Errorf("%w: %w", ErrNotAllLoaded, errors.Join(failed...))
	}
	return nil
}

// ErrNotAllLoaded is matched by Sync's error when some versions would not load: the
// catalog serves the others, and a later Sync tries those again.
var ErrNotAllLoaded = errors.New("some model versions did not load")

// holdAliases keeps each alias whose new version failed to load on the
// version it pointed at in prev, while that one is still loaded here: a
// replica moves an alias only to a version it can serve, and moves it once
// a later Sync loads it.
func (sm *servedModel) holdAliases(prev *servedModel) {
	if prev == nil || len(sm.failed) == 0 {
		return
	}
	held := maps.Clone(sm.aliases)
	for alias, n := range sm.aliases {
		if _, failed := sm.failed[n]; !failed {
			continue
		}
		if was, ok := prev.aliases[alias]; ok && sm.versions[was] != nil {
			held[alias] = was
		}
	}
	sm.aliases = held
}

func (c *Catalog) withPlan(l *Loaded) *Loaded {
	if len(l.Version.FeatureSpec) == 0 {
		return l
	}
	if c.plan == nil {
		l.PlanErr = errors.New("this gateway has no feature store")
		return l
	}
	l.Plan, l.PlanErr = c.plan(l.Version.FeatureSpec, l.Inputs())
	if l.PlanErr != nil {
		c.log.Error("feature spec no longer compiles", "model", l.Version.Name, "version", l.Version.Version, "err", l.PlanErr)
	}
	return l
}

// loadVersion loads v's model file. It logs a failure with the file's path
// and returns it without: callers see where the server keeps its data no
// more than they see its files.
func (c *Catalog) loadVersion(ctx context.Context, v *registry.Version) (*Loaded, error) {
	path, err := c.source.ArtifactPath(ctx, v)
	var s *onnx.Session
	if err == nil {
		s, err = c.load(path)
	}
	if err != nil {
		c.log.Error("model version failed to load", "model", v.Name, "version", v.Version, "path", path, "err", err)
		return nil, withoutPath(err, path)
	}
	ss := &session{Session: s, inputIndex: map[string]int{}}
	for i, in := range s.Inputs() {
		ss.inputIndex[in.Name] = i
	}
	if v.Batching != nil {
		c.batch(ss, v)
	}
	ss.refs.Store(1)
	c.log.Info("model version loaded", "model", v.Name, "version", v.Version, "uuid", v.UUID)
	return &Loaded{Version: v, session: ss}, nil
}

// batch gives ss, the session of v, a batcher as v's batching asks, with a
// runner per core: with onnx.intra_op_threads at its default of 1, a run
// keeps one core busy, so the runners together keep them all busy. A model
// that cannot batch after all (a version registered before the registry
// checked) is logged and served unbatched.
func (c *Catalog) batch(ss *session, v *registry.Version) {
	log := c.log.With("model", v.Name, "version", v.Version)
	if err := registry.CheckBatchable(ss.Signature()); err != nil {
		log.Warn("model version served without batching", "err", err)
		return
	}
	b, err := batching.New(ss.Run, batching.Options{
		MaxBatchSize:  v.Batching.MaxBatchSize,
		MaxQueueDelay: time.Duration(v.Batching.MaxQueueDelay),
		Runners:       runtime.GOMAXPROCS(0),
		Log:           log,
	})
	if err != nil {
		log.Warn("model version served without batching", "err", err)
		return
	}
	ss.batcher = b
	ss.metricAttrs = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("model", v.Name), attribute.String("version", strconv.Itoa(v.Version))))}
}

// withoutPath returns err with the file path, and the directories that hold
// it, written as "the model file" and "the data directory".
func withoutPath(err error, path string) error {
	if path == "" {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), path, "the model file")
	for dir := filepath.Dir(path); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		msg = strings.ReplaceAll(msg, dir, "the data directory")
	}
	return errors.New(msg)
}

// AcquireLatest is Acquire for a change that names a version: when this
// catalog does not serve it, it catches up with the registry once and asks
// again. In a fleet, a version registered or an alias moved through another
// replica a moment ago may not have reached this one yet, and a change made
// here that names it must not fail for that. Requests use Acquire, which
// never waits on the registry.
func (c *Catalog) AcquireLatest(ctx context.Context, model, version string) (*Loaded, error) {
	l, err := c.Acquire(model, version)
	if err == nil {
		return l, nil
	}
	if serr := c.Sync(ctx); serr != nil && !errors.Is(serr, ErrNotAllLoaded) {
		return nil, err
	}
	return c.Acquire(model, version)
}

// Close empties the catalog; each session closes once its requests finish.
func (c *Catalog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.snap.Swap(&snapshot{models: map[string]*servedModel{}})
	old.releaseExcept(nil)
}

// Acquire resolves a model and a version reference (a number, an alias, or
// empty for the "champion" alias, else the newest version) to a loaded
// session. The caller must Release it.
func (c *Catalog) Acquire(model, ref string) (*Loaded, error) {
	for {
		l, err := c.snap.Load().resolve(model, ref)
		if err != nil {
			return nil, err
		}
		if l.acquire() {
			return l, nil
		}
		// The session was retired between reading the snapshot and taking a
		// reference: the snapshot has been replaced, so read it again.
	}
}

// Versions returns the loaded version numbers of a model, ascending.
func (c *Catalog) Versions(model string) ([]int, error) {
	sm, ok := c.snap.Load().models[model]
	if !ok {
		return nil, registry.NotFound("model %q not found", model)
	}
	return sm.numbers, nil
}

// CatalogEntry is a version as the catalog holds it: loaded, or failed to
// load and why.
type CatalogEntry struct {
	Model   string
	Version int
	Loaded  *Loaded // nil when it failed; not acquired, so only its stats and description may be read
	Err     error
}

// Entries returns every version of model (every model when empty), loaded
// or not, by model name and version number.
func (c *Catalog) Entries(model string) ([]CatalogEntry, error) {
	snap := c.snap.Load()
	names := slices.Sorted(maps.Keys(snap.models))
	if model != "" {
		if _, ok := snap.models[model]; !ok {
			return nil, registry.NotFound("model %q not found", model)
		}
		names = []string{model}
	}
	var out []CatalogEntry
	for _, name := range names {
		sm := snap.models[name]
		numbers := slices.Concat(sm.numbers, slices.Collect(maps.Keys(sm.failed)))
		slices.Sort(numbers)
		for _, n := range numbers {
			out = append(out, CatalogEntry{Model: name, Version: n, Loaded: sm.versions[n], Err: sm.failed[n]})
		}
	}
	return out, nil
}

func (s *session) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a session taken by Acquire. The last release closes
// the session, its batcher first: a request that gave up waiting may have
// left a batch running.
func (s *session) Release() {
	if s.refs.Add(-1) == 0 {
		if s.batcher != nil {
			s.batcher.Close()
		}
		s.Session.Close()
	}
}

// run runs the model on inputs, through the version's batcher when it has
// one; ctx bounds the wait for a batch.
func (s *session) run(ctx context.Context, inputs []onnx.Tensor) ([]onnx.Tensor, batching.Stats, error) {
	if s.batcher == nil {
		out, err := s.Run(inputs)
		return out, batching.Stats{}, err
	}
	return s.batcher.Do(ctx, inputs)
}

func (sm *servedModel) add(l *Loaded) {
	l.Ref = l.Version.Name + "/" + strconv.Itoa(l.Version.Version)
	sm.versions[l.Version.Version] = l
	i, _ := slices.BinarySearch(sm.numbers, l.Version.Version)
	sm.numbers = slices.Insert(sm.numbers, i, l.Version.Version)
}

func (s *snapshot) loaded(model string, n int) *Loaded {
	if sm, ok := s.models[model]; ok {
		return sm.versions[n]
	}
	return nil
}

func (s *snapshot) resolve(model, ref string) (*Loaded, error) {
	sm, ok := s.models[model]
	if !ok {
		return nil, registry.NotFound("model %q not found", model)
	}
	n, err := sm.versionFor(ref)
	if err != nil {
		return nil, err
	}
	if l, ok := sm.versions[n]; ok {
		return l, nil
	}
	if err, ok := sm.failed[n]; ok {
		return nil, notReady("version %d of model %q failed to load: %v", n, model, err)
	}
	return nil, registry.NotFound("model %q has no version %d", model, n)
}

func (sm *servedModel) versionFor(ref string) (int, error) {
	if ref == "" {
		if n, ok := sm.aliases[registry.AliasChampion]; ok {
			return n, nil
		}
		if len(sm.numbers) == 0 {
			if len(sm.failed) > 0 {
				return 0, notReady("no version of model %q is loaded", sm.name)
			}
			return 0, registry.NotFound("model %q has no versions", sm.name)
		}
		return sm.numbers[len(sm.numbers)-1], nil
	}
	if ref[0] >= '0' && ref[0] <= '9' {
		n, err := registry.ParseVersion(ref)
		if err != nil {
			return 0, invalidInput("version %q is neither a version number nor an alias", ref)
		}
		return n, nil
	}
	n, ok := sm.aliases[ref]
	if !ok {
		return 0, registry.NotFound("model %q has no alias %q", sm.name, ref)
	}
	return n, nil
}

// releaseExcept drops the catalog's reference to every session in s that is
// not in keep.
func (s *snapshot) releaseExcept(keep map[*session]bool) {
	for _, sm := range s.models {
		for _, l := range sm.versions {
			if !keep[l.session] {
				l.Release()
			}
		}
	}
}
