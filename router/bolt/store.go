// Package bolt keeps endpoints and their histories in an embedded bbolt
// file, the router.Store of a single gateway.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/internal/boltdb"
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
	db, err := boltdb.Open(path, "endpoint database", bucketEndpoints)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Endpoints implements router.Store.
func (s *Store) Endpoints(ctx context.Context) ([]router.Endpoint, error) {
	var out []router.Endpoint
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		out, err = boltdb.All[router.Endpoint](tx.Bucket(bucketEndpoints), "endpoint")
		return err
	})
	return out, err
}

// Save implements router.Store: the stored revision is checked and the
// endpoint replaced in one write transaction, which bbolt runs one at a time.
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
		b := tx.Bucket(bucketEndpoints)
		stored, err := storedRevision(b, e.Name)
		if err != nil {
			return err
		}
		if stored != e.Revision-1 {
			return router.RevisionConflict(e.Name, e.Revision, stored)
		}
		if err := b.Put([]byte(e.Name), endpoint); err != nil {
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

// storedRevision returns the revision of the endpoint stored under name, 0
// when there is none.
func storedRevision(b *bbolt.Bucket, name string) (int, error) {
	v := b.Get([]byte(name))
	if v == nil {
		return 0, nil
	}
	var e struct {
		Revision int `json:"revision"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return 0, fmt.Errorf("decode endpoint %s: %w", name, err)
	}
	return e.Revision, nil
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
	var out []router.Revision
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		out, err = boltdb.All[router.Revision](tx.Bucket(historyBucket(name)), "revision of "+name)
		return err
	})
	return out, err
}
