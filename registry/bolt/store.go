// Package bolt keeps the registry's records and audit trail in an embedded
// bbolt file, the default MetaStore of a single gateway.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/mlgate/mlgate/internal/boltdb"
	"github.com/mlgate/mlgate/registry"
)

var (
	bucketModels = []byte("models")
	bucketAudit  = []byte("audit")
)

// Store is a registry.MetaStore in one bbolt file.
type Store struct {
	db *bbolt.DB
}

var _ registry.MetaStore = (*Store)(nil)

// Open opens or creates the store at path.
func Open(path string) (*Store, error) {
	db, err := boltdb.Open(path, "registry database", bucketModels, bucketAudit)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

// Update implements registry.MetaStore.
func (s *Store) Update(ctx context.Context, name string, fn func(m *registry.Model) ([]registry.AuditEvent, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		models := tx.Bucket(bucketModels)
		m := &registry.Model{Name: name}
		if raw := models.Get([]byte(name)); raw != nil {
			if err := json.Unmarshal(raw, m); err != nil {
				return fmt.Errorf("decode model %s: %w", name, err)
			}
		}
		events, err := fn(m)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode model %s: %w", name, err)
		}
		if err := models.Put([]byte(name), raw); err != nil {
			return err
		}
		return appendAudit(tx, events)
	})
}

// AppendAudit implements registry.MetaStore.
func (s *Store) AppendAudit(ctx context.Context, events []registry.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return appendAudit(tx, events) })
}

func appendAudit(tx *bbolt.Tx, events []registry.AuditEvent) error {
	audit := tx.Bucket(bucketAudit)
	for _, ev := range events {
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		ev.Seq = seq
		raw, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode audit event: %w", err)
		}
		if err := audit.Put(seqKey(seq), raw); err != nil {
			return err
		}
	}
	return nil
}

// Model implements registry.MetaStore.
func (s *Store) Model(ctx context.Context, name string) (*registry.Model, error) {
	var m *registry.Model
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketModels).Get([]byte(name))
		if raw == nil {
			return registry.NotFound("model %q not found", name)
		}
		m = new(registry.Model)
		return json.Unmarshal(raw, m)
	})
	return m, err
}

// Models implements registry.MetaStore.
func (s *Store) Models(ctx context.Context) ([]*registry.Model, error) {
	var out []*registry.Model
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(k, raw []byte) error {
			m := new(registry.Model)
			if err := json.Unmarshal(raw, m); err != nil {
				return fmt.Errorf("decode model %s: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// Audit implements registry.MetaStore.
func (s *Store) Audit(ctx context.Context, q registry.AuditQuery) ([]registry.AuditEvent, error) {
	out := []registry.AuditEvent{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		first, next := auditOrder(c, q)
		for k, raw := first(); k != nil; k, raw = next() {
			seq := binary.BigEndian.Uint64(k)
			if q.Limit > 0 && len(out) >= q.Limit || seq <= q.After || q.Before > 0 && seq >= q.Before {
				break
			}
			var ev registry.AuditEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", seq, err)
			}
			if q.Model != "" && ev.Model != q.Model || q.Endpoint != "" && ev.Endpoint != q.Endpoint || q.View != "" && ev.View != q.View {
				continue
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// auditOrder returns how to walk the audit events q selects with c: the
// first (after After, ascending; or before Before, or the last, descending)
// and the next.
func auditOrder(c *bbolt.Cursor, q registry.AuditQuery) (first, next func() ([]byte, []byte)) {
	if !q.Newest {
		return func() ([]byte, []byte) { return c.Seek(seqKey(q.After + 1)) }, c.Next
	}
	return func() ([]byte, []byte) {
		if q.Before == 0 {
			return c.Last()
		}
		if k, _ := c.Seek(seqKey(q.Before)); k == nil {
			return c.Last()
		}
		return c.Prev()
	}, c.Prev
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}
