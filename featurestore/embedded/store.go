// Package embedded keeps online feature values in a bbolt file in the data
// directory: the default online store, which needs no server.
package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/boltdb"
)

// Store is a featurestore.OnlineStore in one bbolt file, a bucket per view.
type Store struct {
	db *bbolt.DB
}

var _ featurestore.OnlineStore = (*Store)(nil)

// Open opens or creates the store at path.
func Open(path string) (*Store, error) {
	db, err := boltdb.Open(path, "online store")
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func bucket(v *featurestore.View) []byte { return []byte("view:" + v.Name) }

// Prepare implements featurestore.OnlineStore. Rows keep values by feature
// name, so adding or removing features needs no change to stored rows.
func (s *Store) Prepare(ctx context.Context, v *featurestore.View) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket(v))
		return err
	})
}

// Drop implements featurestore.OnlineStore.
func (s *Store) Drop(ctx context.Context, v *featurestore.View) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		err := tx.DeleteBucket(bucket(v))
		if errors.Is(err, bbolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// Write implements featurestore.OnlineStore, in one transaction.
func (s *Store) Write(ctx context.Context, v *featurestore.View, rows []featurestore.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket(v))
		if b == nil {
			return fmt.Errorf("view %s is not prepared in the embedded store", v.Name)
		}
		for _, r := range rows {
			if old := b.Get([]byte(r.Key)); len(old) >= 8 && int64(binary.LittleEndian.Uint64(old)) > r.EventTS.UnixNano() {
				continue
			}
			// bbolt keeps the value until the transaction commits: no reuse.
			if err := b.Put([]byte(r.Key), encodeRow(nil, v, r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Read implements featurestore.OnlineStore, in one read transaction.
func (s *Store) Read(ctx context.Context, lookups []featurestore.Lookup) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		for _, l := range lookups {
			b := tx.Bucket(bucket(l.View))
			for i, key := range l.Keys {
				r := featurestore.Row{Key: key}
				if b != nil {
					if raw := b.Get([]byte(key)); raw != nil {
						var err error
						if r, err = decodeRow(raw, key, l.View, l.Features); err != nil {
							return fmt.Errorf("view %s key %q: %w", l.View.Name, key, err)
						}
					}
				}
				if !r.Found {
					r.Values = make([]featurestore.Value, len(l.Features))
				}
				l.Rows[i] = r
			}
		}
		return nil
	})
}

// encodeRow lays a row out as: event time (int64 Unix nanoseconds), then per
// present value its feature name (uint8 length, bytes) and value (uint32
// length, bytes).
func encodeRow(buf []byte, v *featurestore.View, r featurestore.Row) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, uint64(r.EventTS.UnixNano()))
	for i, val := range r.Values {
		if !val.Present() {
			continue
		}
		name := v.Features[i].Name
		buf = append(buf, byte(len(name)))
		buf = append(buf, name...)
		lenAt := len(buf)
		buf = binary.LittleEndian.AppendUint32(buf, 0)
		buf = featurestore.AppendValue(buf, val)
		binary.LittleEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	}
	return buf
}

var errCorrupt = errors.New("stored row is corrupt")

func decodeRow(raw []byte, key string, v *featurestore.View, features []int) (featurestore.Row, error) {
	if len(raw) < 8 {
		return featurestore.Row{}, errCorrupt
	}
	r := featurestore.Row{
		Key:     key,
		Found:   true,
		EventTS: time.Unix(0, int64(binary.LittleEndian.Uint64(raw))).UTC(),
		Values:  make([]featurestore.Value, len(features)),
	}
	for p := raw[8:]; len(p) > 0; {
		n := int(p[0])
		if len(p) < 1+n+4 {
			return featurestore.Row{}, errCorrupt
		}
		name := p[1 : 1+n]
		size := int(binary.LittleEndian.Uint32(p[1+n:]))
		p = p[1+n+4:]
		if len(p) < size {
			return featurestore.Row{}, errCorrupt
		}
		for j, f := range features {
			if v.Features[f].Name == string(name) {
				val, err := featurestore.DecodeValue(v.Features[f].Type, p[:size])
				if err != nil {
					return featurestore.Row{}, err
				}
				r.Values[j] = val
			}
		}
		p = p[size:]
	}
	return r, nil
}
