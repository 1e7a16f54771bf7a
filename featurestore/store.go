package featurestore

import "context"

// Lookup asks a store for some entities of one view.
type Lookup struct {
	View *View
	// Keys are the entity keys to read.
	Keys []string
	// Features are the indexes, in View.Features, of the features to read.
	Features []int
	// Rows receives one row per key, in the order of Keys, with the values of
	// Features in that order. The caller allocates it with len(Keys) rows;
	// the store fills it.
	Rows []Row
}

// Check is what a store checks of lookup i before it reads: a row for each
// key, and features of the view. Its error matches ErrInvalid.
func (l *Lookup) Check(i int) error {
	if len(l.Rows) != len(l.Keys) {
		return Invalid("view %s: lookup %d has %d rows for %d keys", l.View.Name, i, len(l.Rows), len(l.Keys))
	}
	for _, f := range l.Features {
		if f < 0 || f >= len(l.View.Features) {
			return Invalid("view %s: lookup %d: feature index %d out of range (the view has %d features)", l.View.Name, i, f, len(l.View.Features))
		}
	}
	return nil
}

// OnlineStore holds the latest feature values of each entity. Every backend
// passes the conformance suite in featurestore/storetest against a real
// server. Implementations must be safe for concurrent use.
//
// Errors: a method fails with an error matching ErrInvalid when what it was
// given is unusable (a row without a view, a value of the wrong type), and
// Prepare with ErrConflict when the store already holds the view in a shape
// it cannot change to; these describe the caller's input, reach the caller
// as they are, do not count against the store's circuit breaker, and so must
// not hold the store's address. Any other error is the store's (it is
// unreachable, failing, or too slow for ctx's deadline): the Service counts
// it against the store's breaker unless the caller itself went away, and
// answers a read degraded, any other call with ErrUnavailable (logging the
// store's error). A method that waits on the network returns once ctx ends.
type OnlineStore interface {
	// Prepare makes the store ready to hold the view (a table, say). It is
	// called when a view is created and each time one changes; features are
	// only ever added or removed, never retyped, and values of the features
	// that remain are kept.
	Prepare(ctx context.Context, v *View) error
	// Write stores rows of the view; each row has every feature of the view
	// in order (absent values included) and replaces the stored row for its
	// key, unless the stored row has a later EventTS, in which case the write
	// of that row is ignored. Writing the same rows again changes nothing.
	Write(ctx context.Context, v *View, rows []Row) error
	// Read fills the Rows of every lookup in one round trip to the store (or
	// one concurrent batch of requests). A key with no row gives a Row with
	// Found false.
	Read(ctx context.Context, lookups []Lookup) error
	// Drop removes the view and all its rows.
	Drop(ctx context.Context, v *View) error
	// Close releases the store's connections.
	Close() error
}

// ViewStore keeps feature view definitions. Implementations must be safe for
// concurrent use.
type ViewStore interface {
	// Views returns every view.
	Views(ctx context.Context) ([]*View, error)
	// PutView creates or replaces the view of that name.
	PutView(ctx context.Context, v *View) error
	// DeleteView removes the named view; removing a missing view is not an
	// error.
	DeleteView(ctx context.Context, name string) error
}
