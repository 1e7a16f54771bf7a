package featurestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status says what a read found for one feature value.
type Status string

// The statuses of a value.
const (
	StatusPresent  Status = "PRESENT"
	StatusNotFound Status = "NOT_FOUND"
	StatusStale    Status = "STALE" // older than the view's TTL
)

// statusOf classifies value i of a row read from view v.
func statusOf(v *View, r *Row, i int, now time.Time) Status {
	switch {
	case !r.Found || !r.Values[i].Present():
		return StatusNotFound
	case v.Stale(r.EventTS, now):
		return StatusStale
	}
	return StatusPresent
}

// WriteRows stores rows of the named view and evicts them from the cache.
// It fails with ErrUnavailable, naming the store but no more of what went
// wrong (the log has the store's own error), when the store cannot take the
// write: its breaker is open, it fails, or it does not answer within the
// write timeout.
func (s *Service) WriteRows(ctx context.Context, view string, rows []Row) error {
	v, err := s.View(view)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if len(r.Values) != len(v.Features) {
			return fmt.Errorf("row %q has %d values, view %s has %d features", r.Key, len(r.Values), v.Name, len(v.Features))
		}
	}
	err = s.call(ctx, v.Store, "write view "+v.Name, s.writeTimeout, func(ctx context.Context, st OnlineStore) error {
		return st.Write(ctx, v, rows)
	})
	if err != nil {
		return err
	}
	for _, r := range rows {
		s.cache.evict(v, r.Key)
	}
	return nil
}

// call makes one call (op, "write view users") to the named store through
// its breaker, within timeout and ctx's deadline (see callContext), and
// returns its error as callError does.
func (s *Service) call(ctx context.Context, store, op string, timeout time.Duration, fn func(context.Context, OnlineStore) error) error {
	c := callContext(ctx, timeout)
	defer c.cancel()
	_, err := s.breakers[store].Execute(func() (struct{}, error) {
		return struct{}{}, c.failure(ctx, fn(c.ctx, s.stores[store]))
	})
	return s.callError(ctx, c, store, op, err)
}

// prepare makes the view ready in its store within the write timeout or
// PrepareTimeout, whichever is longer, but
// outside the store's breaker: a store may have nothing to prepare and not
// be called at all (Redis), and such a success must not close a breaker a
// failing store opened. Its error is as callError returns it.
func (s *Service) prepare(ctx context.Context, v *View) error {
	c := callContext(ctx, max(s.writeTimeout, PrepareTimeout))
	defer c.cancel()
	return s.callError(ctx, c, v.Store, "prepare view "+v.Name, s.stores[v.Store].Prepare(c.ctx, v))
}

// callError returns the error of the call op to the named store, made under
// c within the request's ctx. The store's ErrInvalid and ErrConflict come
// back wrapped as they are (they describe the caller's input, never the
// store); any other failure is logged and comes back as ErrUnavailable with
// a message that names the store's kind only, never what the driver said
// (addresses, hosts, ports).
func (s *Service) callError(ctx context.Context, c storeCall, store, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case Refused(err):
		return unavailable("online store %s is unavailable: it failed repeatedly and its circuit breaker is open; try again shortly", store)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict):
		return fmt.Errorf("%s in store %s: %w", op, store, err)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller went away; no one reads the answer.
		return fmt.Errorf("%s in store %s: %w", op, store, ctx.Err())
	}
	s.log.WarnContext(ctx, "online store call failed", "store", store, "op", op, "err", err)
	if c.ctx.Err() != nil {
		return unavailable("online store %s is unavailable: %s did not complete in time", store, op)
	}
	return unavailable("online store %s is unavailable: %s failed (the gateway's log has the store's error)", store, op)
}

// read fills the lookups, from the cache where a view allows it, else with
// one Read per store, the stores in parallel. A store that cannot answer (its
// breaker is open, or the read fails or runs out of time) does not fail the
// read: its lookups are answered from the cache, expired entries included,
// or else as not found, and read returns its name among the degraded
// stores, sorted. The error is for lookups a store refused as invalid.
func (s *Service) read(ctx context.Context, lookups []Lookup, now time.Time) ([]string, error) {
	type pending struct {
		orig   *Lookup
		keys   []int // indexes into orig.Keys read from the store
		lookup Lookup
	}
	var misses []*pending
	byStore := map[string][]Lookup{}
	for i := range lookups {
		l := &lookups[i]
		if !s.cache.enabled(l.View) {
			byStore[l.View.Store] = append(byStore[l.View.Store], *l)
			continue
		}
		p := &pending{orig: l}
		for j, key := range l.Keys {
			if row, ok := s.cache.get(l.View, key, now); ok {
				l.Rows[j] = project(row, l.Features)
			} else {
				p.keys = append(p.keys, j)
			}
		}
		s.metrics.cacheResult(ctx, l.View, len(l.Keys)-len(p.keys), len(p.keys))
		if len(p.keys) == 0 {
			continue
		}
		p.lookup = Lookup{View: l.View, Keys: make([]string, len(p.keys)), Features: allFeatures(l.View), Rows: make([]Row, len(p.keys))}
		for k, j := range p.keys {
			p.lookup.Keys[k] = l.Keys[j]
		}
		misses = append(misses, p)
	}
	// Cache misses go out with the other reads of their store. Lookups are
	// copied into byStore; their Rows slices are shared, so results land in
	// place.
	for _, p := range misses {
		byStore[p.lookup.View.Store] = append(byStore[p.lookup.View.Store], p.lookup)
	}
	degraded, err := s.readStores(ctx, byStore)
	if err != nil {
		return nil, err
	}
	for _, p := range misses {
		// A row the store did not give is not cached: it would hide the
		// store's own once it answers again.
		fresh := !slices.Contains(degraded, p.lookup.View.Store)
		for k, j := range p.keys {
			row := p.lookup.Rows[k]
			if fresh {
				s.cache.put(p.lookup.View, row, now)
			}
			p.orig.Rows[j] = project(row, p.orig.Features)
		}
	}
	s.metrics.observe(ctx, lookups, now)
	return degraded, nil
}

// readStores reads each store's lookups, the stores in parallel, and
// returns the names of the stores that could not answer, sorted.
func (s *Service) readStores(ctx context.Context, byStore map[string][]Lookup) ([]string, error) {
	if len(byStore) == 1 {
		for name, ls := range byStore {
			ok, err := s.readStore(ctx, name, ls)
			if ok || err != nil {
				return nil, err
			}
			return []string{name}, nil
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		degraded []string
	)
	for name, ls := range byStore {
		wg.Go(func() {
			ok, err := s.readStore(ctx, name, ls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !ok {
				degraded = append(degraded, name)
			}
		})
	}
	wg.Wait()
	sort.Strings(degraded)
	return degraded, errors.Join(errs...)
}

// readStore reads one store's lookups through its breaker, within the read
// timeout and the read's share of the request's time (see callContext).
// When the store cannot answer it fills the lookups without it (see
// fallback), counts a degraded read and reports false.
func (s *Service) readStore(ctx context.Context, name string, ls []Lookup) (bool, error) {
	c := callContext(ctx, s.timeout)
	defer c.cancel()
	_, err := s.breakers[name].Execute(func() (struct{}, error) {
		start := time.Now()
		sctx, span := s.startLookup(c.ctx, name, ls)
		err := s.stores[name].Read(sctx, ls)
		endLookup(span, err)
		s.metrics.lookup.Record(ctx, time.Since(start).Seconds(), s.metrics.store(name))
		return struct{}{}, c.failure(ctx, err)
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrInvalid):
		return false, fmt.Errorf("read from store %s: %w", name, err)
	}
	s.fallback(ls)
	s.metrics.degraded.Add(ctx, 1, s.metrics.store(name))
	return false, nil
}

// fallback fills the rows of lookups whose store could not answer (a failed
// read may have filled some): from the cache however old the entry, else as
// not found, so that a prediction takes the defaults.
func (s *Service) fallback(ls []Lookup) {
	for _, l := range ls {
		for k, key := range l.Keys {
			if row, ok := s.cache.stale(l.View, key); ok {
				l.Rows[k] = project(row, l.Features)
			} else {
				l.Rows[k] = Row{Key: key}
			}
		}
	}
}

func allFeatures(v *View) []int {
	idx := make([]int, len(v.Features))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// project picks features (indexes into the view) from a row holding every
// feature of its view.
func project(full Row, features []int) Row {
	r := Row{Key: full.Key, Found: full.Found, EventTS: full.EventTS, Values: make([]Value, len(features))}
	if full.Found {
		for i, f := range features {
			r.Values[i] = full.Values[f]
		}
	}
	return r
}

// Ref is a parsed "view:feature" reference.
type Ref struct {
	View    *View
	Feature int
}

// ParseRef resolves "view:feature" against views.
func parseRef(ref string, views map[string]*View) (Ref, error) {
	view, feature, ok := strings.Cut(ref, ":")
	if !ok {
		return Ref{}, invalid("feature %q: write it as view:feature", ref)
	}
	v, ok := views[view]
	if !ok {
		return Ref{}, invalid("feature %q: no feature view %q", ref, view)
	}
	i := v.Feature(feature)
	if i < 0 {
		return Ref{}, invalid("feature %q: view %s has no feature %q", ref, view, feature)
	}
	return Ref{View: v, Feature: i}, nil
}

// MaxEntityRows bounds the entity rows of one request.
const MaxEntityRows = 10000

// entityRows checks the entity columns of a request against the columns the
// views need and returns the number of rows.
func entityRows(entities map[string][]string, needed []string) (int, error) {
	n := -1
	for _, col := range needed {
		vals, ok := entities[col]
		if !ok {
			return 0, invalid("entities: column %q is missing (needed: %s)", col, strings.Join(needed, ", "))
		}
		if n >= 0 && len(vals) != n {
			return 0, invalid("entities: column %q has %d values, column %q has %d; every column needs one value per row", col, len(vals), needed[0], n)
		}
		n = len(vals)
		for i, val := range vals {
			if err := CheckEntityValue(val); err != nil {
				return 0, invalid("entities.%s[%d]: %v", col, i, err)
			}
		}
	}
	for col := range entities {
		if !slices.Contains(needed, col) {
			return 0, invalid("entities: column %q is not an entity of the features asked for (they need: %s)", col, strings.Join(needed, ", "))
		}
	}
	if n < 1 || n > MaxEntityRows {
		return 0, invalid("entities: want 1 to %d rows, got %d", MaxEntityRows, max(n, 0))
	}
	return n, nil
}

// keysFor builds the entity key of each row for view v.
func keysFor(v *View, entities map[string][]string, n int) []string {
	keys := make([]string, n)
	parts := make([]string, len(v.Entities))
	for i := range keys {
		for j, col := range v.Entities {
			parts[j] = entities[col][i]
		}
		keys[i] = Key(parts)
	}
	return keys
}

// OnlineResult is the answer to an online read: per entity row, a value, a
// status and an event time for each requested feature.
type OnlineResult struct {
	Features []string
	Rows     []OnlineRow
	// Degraded names the stores that could not answer, sorted; their
	// values came from the cache, however old, or read as not found.
	Degraded []string
}

// OnlineRow is one entity row of an OnlineResult.
type OnlineRow struct {
	Entities map[string]string
	Values   []Value
	Statuses []Status
	EventTS  []time.Time // zero when the value was not found
}

// MaxOnlineFeatures bounds the features of one online read: as many as one
// view may hold.
const MaxOnlineFeatures = maxFeatures

// Online reads features ("view:feature") for the entity rows given as
// columns. It fails with ErrInvalid when features are missing, more than
// MaxOnlineFeatures, or unknown, and when the entity columns do not fit them.
func (s *Service) Online(ctx context.Context, features []string, entities map[string][]string) (*OnlineResult, error) {
	if len(features) == 0 || len(features) > MaxOnlineFeatures {
		return nil, invalid("features: want 1 to %d \"view:feature\" references, got %d", MaxOnlineFeatures, len(features))
	}
	views := *s.set.Load()
	refs := make([]Ref, len(features))
	var needed []string
	for i, f := range features {
		r, err := parseRef(f, views)
		if err != nil {
			return nil, err
		}
		refs[i] = r
		for _, e := range r.View.Entities {
			if !slices.Contains(needed, e) {
				needed = append(needed, e)
			}
		}
	}
	sort.Strings(needed)
	n, err := entityRows(entities, needed)
	if err != nil {
		return nil, err
	}
	// One lookup per view, asking for the features of that view.
	var lookups []Lookup
	slot := make([][2]int, len(refs)) // ref → lookup, position in its Features
	for i, r := range refs {
		li := -1
		for j := range lookups {
			if lookups[j].View == r.View {
				li = j
			}
		}
		if li < 0 {
			lookups = append(lookups, Lookup{View: r.View, Keys: keysFor(r.View, entities, n), Rows: make([]Row, n)})
			li = len(lookups) - 1
		}
		slot[i] = [2]int{li, len(lookups[li].Features)}
		lookups[li].Features = append(lookups[li].Features, r.Feature)
	}
	now := s.now()
	degraded, err := s.read(ctx, lookups, now)
	if err != nil {
		return nil, err
	}
	res := &OnlineResult{Features: features, Rows: make([]OnlineRow, n), Degraded: degraded}
	for row := range n {
		or := OnlineRow{
			Entities: make(map[string]string, len(needed)),
			Values:   make([]Value, len(refs)),
			Statuses: make([]Status, len(refs)),
			EventTS:  make([]time.Time, len(refs)),
		}
		for _, col := range needed {
			or.Entities[col] = entities[col][row]
		}
		for i := range refs {
			l := &lookups[slot[i][0]]
			r := &l.Rows[row]
			or.Statuses[i] = statusOf(l.View, r, slot[i][1], now)
			if or.Statuses[i] != StatusNotFound {
				or.EventTS[i] = r.EventTS
				or.Values[i] = r.Values[slot[i][1]]
			}
		}
		res.Rows[row] = or
	}
	return res, nil
}
