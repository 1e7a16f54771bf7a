// Package postgres keeps the feature views' definitions in PostgreSQL, the
// control plane that a fleet of gateways shares; the views' values stay in
// their online stores. ViewStore needs the table of Schema, which
// pgdb.Migrate applies at start-up; it does not own the pool it is given.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the history of the feature store's tables, for pgdb.Migrate.
var Schema = pgdb.Schema{Owner: "featurestore", FS: migrations, Dir: "migrations"}

// ViewStore is a featurestore.ViewStore in PostgreSQL. Gateways sharing the
// database see one set of views.
type ViewStore struct {
	pool *pgxpool.Pool
}

var _ featurestore.ViewStore = (*ViewStore)(nil)

// NewViewStore returns a ViewStore in the database of pool, which
// pgdb.Migrate has brought to Schema.
func NewViewStore(pool *pgxpool.Pool) *ViewStore { return &ViewStore{pool: pool} }

// Views implements featurestore.ViewStore, ordered by name.
func (s *ViewStore) Views(ctx context.Context) ([]*featurestore.View, error) {
	out, err := pgdb.Documents[*featurestore.View](ctx, s.pool, "view", `SELECT name, view FROM featurestore_views ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read views: %w", err)
	}
	return out, nil
}

// PutView implements featurestore.ViewStore.
func (s *ViewStore) PutView(ctx context.Context, v *featurestore.View) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode view %s: %w", v.Name, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO featurestore_views (name, view) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET view = EXCLUDED.view`, v.Name, raw); err != nil {
		return fmt.Errorf("put view %s: %w", v.Name, err)
	}
	return nil
}

// DeleteView implements featurestore.ViewStore.
func (s *ViewStore) DeleteView(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM featurestore_views WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete view %s: %w", name, err)
	}
	return nil
}
