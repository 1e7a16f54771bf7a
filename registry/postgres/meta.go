// Package postgres keeps the registry in PostgreSQL, the control plane that
// a fleet of gateways shares: MetaStore holds the model records and the
// audit trail, ArtifactStore the model files as content-addressed blobs,
// each fetched once into a replica's local cache. Both need the tables of
// Schema, which pgdb.Migrate applies at start-up; neither owns the pool it
// is given.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/pgdb"
	"github.com/mlgate/mlgate/registry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the history of the registry's tables, for pgdb.Migrate.
var Schema = pgdb.Schema{Owner: "registry", FS: migrations, Dir: "migrations"}

// MetaStore is a registry.MetaStore in PostgreSQL. Gateways sharing the
// database see one registry: concurrent updates of a model, from any of
// them, take turns.
type MetaStore struct {
	pool *pgxpool.Pool
}

var _ registry.MetaStore = (*MetaStore)(nil)

// NewMetaStore returns a MetaStore in the database of pool, which pgdb.Migrate
// has brought to Schema.
func NewMetaStore(pool *pgxpool.Pool) *MetaStore { return &MetaStore{pool: pool} }

// Close implements registry.MetaStore. It leaves the pool open: the control
// plane's stores share it, and whoever opened it closes it.
func (s *MetaStore) Close() error { return nil }

// Update implements registry.MetaStore, in one transaction.
func (s *MetaStore) Update(ctx context.Context, name string, fn func(m *registry.Model) ([]registry.AuditEvent, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row is inserted when missing and locked either way (the no-op
		// DO UPDATE is what locks an existing one and returns its model),
		// so that updates of one model take turns until commit.
		var raw []byte
		err := tx.QueryRow(ctx, `INSERT INTO registry_models (name) VALUES ($1)
			ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING model`, name).Scan(&raw)
		if err != nil {
			return fmt.Errorf("lock model %s: %w", name, err)
		}
		m := &registry.Model{Name: name}
		if raw != nil {
			if err := json.Unmarshal(raw, m); err != nil {
				return fmt.Errorf("decode model %s: %w", name, err)
			}
		}
		events, err := fn(m)
		if err != nil {
			fnErr = err
			return err
		}
		if raw, err = json.Marshal(m); err != nil {
			return fmt.Errorf("encode model %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE registry_models SET model = $2 WHERE name = $1`, name, raw); err != nil {
			return fmt.Errorf("write model %s: %w", name, err)
		}
		return appendAudit(ctx, tx, events)
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("update model %s: %w", name, err)
	}
	return nil
}

// AppendAudit implements registry.MetaStore.
func (s *MetaStore) AppendAudit(ctx context.Context, events []registry.AuditEvent) error {
	if len(events) == 0 {
		return ctx.Err()
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return appendAudit(ctx, tx, events) })
	if err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	return nil
}

// appendAudit writes events in tx. Writers of the trail take turns from
// here to their commit, so that Seq follows commit order: a reader that has
// seen Seq n never finds an event below n later.
func appendAudit(ctx context.Context, tx pgx.Tx, events []registry.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mlgate registry_audit', 0))`); err != nil {
		return fmt.Errorf("lock the audit trail: %w", err)
	}
	batch := &pgx.Batch{}
	for _, ev := range events {
		ev.Seq = 0 // the seq column holds it
		raw, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode audit event: %w", err)
		}
		batch.Queue(`INSERT INTO registry_audit (time, actor, action, model, endpoint, view, event)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7)`,
			ev.Time, ev.Actor, ev.Action, ev.Model, ev.Endpoint, ev.View, raw)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("write audit events: %w", err)
	}
	return nil
}

// Model implements registry.MetaStore.
func (s *MetaStore) Model(ctx context.Context, name string) (*registry.Model, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT model FROM registry_models WHERE name = $1`, name).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registry.NotFound("model %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", name, err)
	}
	m := new(registry.Model)
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("decode model %s: %w", name, err)
	}
	return m, nil
}

// Models implements registry.MetaStore.
func (s *MetaStore) Models(ctx context.Context) ([]*registry.Model, error) {
	out, err := pgdb.Documents[*registry.Model](ctx, s.pool, "model", `SELECT name, model FROM registry_models ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read models: %w", err)
	}
	return out, nil
}

// Audit implements registry.MetaStore.
func (s *MetaStore) Audit(ctx context.Context, q registry.AuditQuery) ([]registry.AuditEvent, error) {
	out := []registry.AuditEvent{}
	if q.After >= math.MaxInt64 {
		return out, nil // no seq is above it
	}
	var sql strings.Builder
	args := []any{int64(q.After)}
	sql.WriteString(`SELECT seq, event FROM registry_audit WHERE seq > $1`)
	for _, f := range []struct{ column, value string }{{"model", q.Model}, {"endpoint", q.Endpoint}, {"view", q.View}} {
		if f.value != "" {
			args = append(args, f.value)
			sql.WriteString(" AND " + f.column + " = $" + strconv.Itoa(len(args)))
		}
	}
	if q.Before > 0 {
		args = append(args, int64(min(q.Before, math.MaxInt64)))
		sql.WriteString(" AND seq < $" + strconv.Itoa(len(args)))
	}
	sql.WriteString(" ORDER BY seq")
	if q.Newest {
		sql.WriteString(" DESC")
	}
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sql.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
	}
	rows, err := s.pool.Query(ctx, sql.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	var seq int64
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &raw}, func() error {
		var ev registry.AuditEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode audit event %d: %w", seq, err)
		}
		ev.Seq = uint64(seq)
		out = append(out, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	return out, nil
}
