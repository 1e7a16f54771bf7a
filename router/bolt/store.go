// Package bolt keeps endpoints and their histories in an embedded bbolt
// file, the router.Store of a single gateway.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/router"
)

var bucketEndpoints = []byte("endpoints")

func historyBucket(name string) []byte { return []byte("history:" + name) }

// Store is a router.Store in one bbolt file.
type Store struct {
	db *bbolt.DB
}

var _ router.Store = (*Store)(nil)

// Open opens or creates the store at path.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open endpoint database %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketEndpoints)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Endpoints implements router.Store.
func (s *Store) Endpoints(ctx context.Context) ([]router.Endpoint, error) {
	var out []router.Endpoint
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEndpoints).ForEach(func(k, raw []byte) error {
			var e router.Endpoint
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode endpoint %s: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Save implements router.Store.
func (s *Store) Save(ctx context.Context, e router.Endpoint, r router.Revision) error {
	endpoint, err := json.Marshal(e)
	if err != nil {
		return err
	}
	revision, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketEndpoints).Put([]byte(e.Name), endpoint); err != nil {
			return err
		}
		h, err := tx.CreateBucketIfNotExists(historyBucket(e.Name))
		if err != nil {
			return err
		}
		seq, err := h.NextSequence()
		if err != nil {
			return err
		}
		return h.Put(binary.BigEndian.AppendUint64(nil, seq), revision)
	})
}

// Delete implements router.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketEndpoints).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(historyBucket(name)); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
			return err
		}
		return nil
	})
}

// History implements router.Store.
func (s *Store) History(ctx context.Context, name string) ([]router.Revision, error) {
	out := []router.Revision{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		h := tx.Bucket(historyBucket(name))
		if h == nil {
			return nil
		}
		return h.ForEach(func(_, raw []byte) error {
			var r router.Revision
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode history of %s: %w", name, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}
