// Package postgres keeps the drift monitors' specs in PostgreSQL, the
// control plane that a fleet of gateways shares (Store), and the state the
// fleet's drift monitors share (Fleet): each replica's window snapshots,
// the leader's reports and the outbox of alerts. Both need the tables of
// Schema, which pgdb.Migrate applies at start-up; neither owns the pool it
// is given.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the history of drift's tables, for pgdb.Migrate.
var Schema = pgdb.Schema{Owner: "drift", FS: migrations, Dir: "migrations"}

// Store is a drift.Store in PostgreSQL. Gateways sharing the database see
// one set of monitors.
type Store struct {
	pool *pgxpool.Pool
}

var _ drift.Store = (*Store)(nil)

// NewStore returns a Store in the database of pool, which pgdb.Migrate has
// brought to Schema.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Monitors implements drift.Store, ordered by name.
func (s *Store) Monitors(ctx context.Context) ([]drift.MonitorSpec, error) {
	out, err := pgdb.Documents[drift.MonitorSpec](ctx, s.pool, "monitor", `SELECT name, spec FROM drift_monitors ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read monitors: %w", err)
	}
	return out, nil
}

// PutMonitor implements drift.Store.
func (s *Store) PutMonitor(ctx context.Context, spec drift.MonitorSpec) error {
	raw, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode monitor %s: %w", spec.Name, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO drift_monitors (name, spec) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`, spec.Name, raw); err != nil {
		return fmt.Errorf("save monitor %s: %w", spec.Name, err)
	}
	return nil
}

// DeleteMonitor implements drift.Store.
func (s *Store) DeleteMonitor(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM drift_monitors WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete monitor %s: %w", name, err)
	}
	return nil
}
