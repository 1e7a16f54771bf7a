// Package boltdb holds what the gateway's bbolt files share: opening one with
// its buckets, and reading a bucket of JSON records.
package boltdb

import (
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Open opens or creates the bbolt file at path, with the buckets made when
// missing. what names the file in errors ("registry database"). Another
// process holding the file makes Open fail after 2 s rather than wait.
func Open(path, what string, buckets ...[]byte) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", what, path, err)
	}
	if len(buckets) == 0 {
		return db, nil
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s %s: %w", what, path, err)
	}
	return db, nil
}

// All decodes every value of bucket b, in key order, as a JSON T; a missing
// bucket (nil) holds none. what names a record in errors ("monitor").
func All[T any](b *bbolt.Bucket, what string) ([]T, error) {
	out := []T{}
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %s %s: %w", what, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}
