// Package bolt keeps drift monitor specs in an embedded bbolt file, the
// drift.Store of a single gateway.
package bolt

import (
	"context"
	"encoding/json"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/boltdb"
)

var bucketMonitors = []byte("monitors")

// Store is a drift.Store in one bbolt file.
type Store struct {
	db *bbolt.DB
}

var _ drift.Store = (*Store)(nil)

// Open opens or creates the store at path.
func Open(path string) (*Store, error) {
	db, err := boltdb.Open(path, "monitor database", bucketMonitors)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Monitors implements drift.Store.
func (s *Store) Monitors(ctx context.Context) ([]drift.MonitorSpec, error) {
	var out []drift.MonitorSpec
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		out, err = boltdb.All[drift.MonitorSpec](tx.Bucket(bucketMonitors), "monitor")
		return err
	})
	return out, err
}

// PutMonitor implements drift.Store.
func (s *Store) PutMonitor(ctx context.Context, spec drift.MonitorSpec) error {
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMonitors).Put([]byte(spec.Name), raw) })
}

// DeleteMonitor implements drift.Store.
func (s *Store) DeleteMonitor(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMonitors).Delete([]byte(name)) })
}
