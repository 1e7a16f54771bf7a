// Package changes is the change hub: a domain that commits a change to its
// store (a model version or alias, a feature view, an endpoint's policy, a
// drift monitor) publishes it here, and what serves from that state (the
// catalog and its feature plans, the routes, the monitors) subscribes and
// rebuilds its snapshot. Handlers never re-sync by hand. In one process
// the hub delivers each change to every subscriber before Publish returns,
// so the caller who made a change sees it served as soon as it is
// answered; a fleet carries the same events between replicas.
package changes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/mlgate/mlgate/internal/recovery"
)

// Kind is what changed.
type Kind string

// The kinds of change.
const (
	Model    Kind = "model"    // a model's versions, aliases or tags
	View     Kind = "view"     // a feature view's definition
	Endpoint Kind = "endpoint" // an endpoint's policy or canary
	Monitor  Kind = "monitor"  // a drift monitor's spec
)

// Event says that the thing of a kind called Name changed; a subscriber
// reads its new state from the store. Revision numbers the events of one
// hub in the order they were published.
type Event struct {
	Kind     Kind   `json:"kind"`
	Name     string `json:"name"`
	Revision uint64 `json:"revision"`
}

func (e Event) String() string { return fmt.Sprintf("%s %q (revision %d)", e.Kind, e.Name, e.Revision) }

// Publisher announces a committed change; a Hub is one. The domains that
// commit changes (registry, feature store, router, drift) take one.
type Publisher interface {
	Publish(ctx context.Context, kind Kind, name string) error
}

// Handler rebuilds what a subscriber serves after e. An error is returned
// to the publisher, who reports it: the change is committed, but not yet
// served.
type Handler func(ctx context.Context, e Event) error

type subscription struct {
	name  string
	kinds []Kind
	h     Handler
}

// Hub delivers published changes to subscribers, in the order they
// subscribed. Subscribers read the state from the store, so a rebuild is
// the same whichever of two close changes it follows; deliveries are not
// serialised, and a subscriber may itself publish.
type Hub struct {
	log *slog.Logger

	mu   sync.Mutex
	rev  uint64
	subs []subscription
}

// New returns a hub without subscribers.
func New(log *slog.Logger) *Hub { return &Hub{log: log} }

// Subscribe calls h with every later change of one of kinds. name says who
// subscribes, in logs and errors.
func (h *Hub) Subscribe(name string, f Handler, kinds ...Kind) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, subscription{name: name, kinds: kinds, h: f})
}

// Publish announces that the thing of kind called name changed, and returns
// once every subscriber has rebuilt. It returns their errors, joined; a
// subscriber's panic is recovered and returned as its error. A nil hub
// publishes nothing.
func (h *Hub) Publish(ctx context.Context, kind Kind, name string) error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	h.rev++
	e := Event{Kind: kind, Name: name, Revision: h.rev}
	subs := h.subs
	h.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if !slices.Contains(s.kinds, kind) {
			continue
		}
		var err error
		if perr := recovery.Do(h.log, "change subscriber "+s.name, func() { err = s.h(ctx, e) }); perr != nil {
			err = perr
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s after %s: %w", s.name, e, err))
		}
	}
	return errors.Join(errs...)
}

// Revision returns the revision of the last change published.
func (h *Hub) Revision() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}
