package embedded

import (
	"context"
	"encoding/json"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/boltdb"
)

var _ featurestore.ViewStore = (*Store)(nil)

var bucketViews = []byte("views")

// Views implements featurestore.ViewStore.
func (s *Store) Views(ctx context.Context) ([]*featurestore.View, error) {
	var out []*featurestore.View
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		out, err = boltdb.All[*featurestore.View](tx.Bucket(bucketViews), "view")
		return err
	})
	return out, err
}

// PutView implements featurestore.ViewStore.
func (s *Store) PutView(ctx context.Context, v *featurestore.View) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketViews)
		if err != nil {
			return err
		}
		return b.Put([]byte(v.Name), raw)
	})
}

// DeleteView implements featurestore.ViewStore.
func (s *Store) DeleteView(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketViews); b != nil {
			return b.Delete([]byte(name))
		}
		return nil
	})
}
