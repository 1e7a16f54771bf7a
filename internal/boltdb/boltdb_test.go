package boltdb

import (
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

func TestOpenAndAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, "test database", []byte("a"), []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bbolt.Tx) error {
		tx.Bucket([]byte("a")).Put([]byte("1"), []byte(`{"n": 1}`))
		tx.Bucket([]byte("a")).Put([]byte("2"), []byte(`{"n": 2}`))
		tx.Bucket([]byte("b")).Put([]byte("x"), []byte(`{"n": "not a number"}`))
		return nil
	})
	type rec struct{ N int }
	db.View(func(tx *bbolt.Tx) error {
		if got, err := All[rec](tx.Bucket([]byte("a")), "rec"); err != nil || len(got) != 2 || got[0].N != 1 || got[1].N != 2 {
			t.Errorf("All(a) = %v, %v", got, err)
		}
		if got, err := All[rec](tx.Bucket([]byte("none")), "rec"); err != nil || got == nil || len(got) != 0 {
			t.Errorf("All(missing bucket) = %#v, %v; want an empty list", got, err)
		}
		if _, err := All[rec](tx.Bucket([]byte("b")), "rec"); err == nil || !strings.Contains(err.Error(), "decode rec x") {
			t.Errorf("All(b) err = %v, want decode rec x", err)
		}
		return nil
	})
	bad := filepath.Join(t.TempDir(), "missing", "x.db")
	if _, err := Open(bad, "test database"); err == nil || !strings.Contains(err.Error(), "open test database "+bad) {
		t.Errorf("Open in a missing directory: %v", err)
	}
}
