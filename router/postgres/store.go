// Package postgres keeps the router's endpoints and their histories in
// PostgreSQL, the control plane that a fleet of gateways shares (Store), and
// the figures each gateway of the fleet publishes for the others (Fleet).
// Both need the tables of Schema, which pgdb.Migrate applies at start-up;
// neither owns the pool it is given.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/pgdb"
	"github.com/mlgate/mlgate/router"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the history of the router's tables, for pgdb.Migrate.
var Schema = pgdb.Schema{Owner: "router", FS: migrations, Dir: "migrations"}

// Store is a router.Store in PostgreSQL. Gateways sharing the database see
// one set of endpoints: Saves of one endpoint, from any of them, take turns,
// a Save of a revision another one saved first is refused, and the history
// keeps them in the order they committed.
type Store struct {
	pool *pgxpool.Pool
}

var _ router.Store = (*Store)(nil)

// NewStore returns a Store in the database of pool, which pgdb.Migrate has
// brought to Schema.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Endpoints implements router.Store, ordered by name.
func (s *Store) Endpoints(ctx context.Context) ([]router.Endpoint, error) {
	out, err := pgdb.Documents[router.Endpoint](ctx, s.pool, "endpoint",
		`SELECT name, endpoint FROM router_endpoints ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

// Save implements router.Store, in one transaction. The endpoint's row is
// written only if it holds the revision e follows (an UPDATE conditional on
// it, or an INSERT of revision 1 that does nothing if the row exists); a
// concurrent Save of the same row waits for this one to commit and then
// finds the revision changed. Writing the row locks it until commit, so the
// revision's seq, taken after, follows the order in which Saves of the
// endpoint commit.
func (s *Store) Save(ctx context.Context, e router.Endpoint, r router.Revision) error {
	endpoint, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode endpoint %s: %w", e.Name, err)
	}
	revision, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode revision %d of %s: %w", r.Revision, e.Name, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tag pgconn.CommandTag
		var err error
		if e.Revision == 1 {
			tag, err = tx.Exec(ctx, `INSERT INTO router_endpoints (name, endpoint) VALUES ($1, $2)
				ON CONFLICT (name) DO NOTHING`, e.Name, endpoint)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE router_endpoints SET endpoint = $2
				WHERE name = $1 AND (endpoint->>'revision')::int = $3`, e.Name, endpoint, e.Revision-1)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var stored int
			err := tx.QueryRow(ctx, `SELECT (endpoint->>'revision')::int FROM router_endpoints WHERE name = $1`, e.Name).Scan(&stored)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			return router.RevisionConflict(e.Name, e.Revision, stored)
		}
		_, err = tx.Exec(ctx, `INSERT INTO router_history (endpoint, revision) VALUES ($1, $2)`, e.Name, revision)
		return err
	})
	if errors.Is(err, router.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("save endpoint %s revision %d: %w", e.Name, r.Revision, err)
	}
	return nil
}

// Delete implements router.Store; the history goes with the endpoint.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM router_endpoints WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", name, err)
	}
	return nil
}

// History implements router.Store.
func (s *Store) History(ctx context.Context, name string) ([]router.Revision, error) {
	out, err := pgdb.Documents[router.Revision](ctx, s.pool, "revision at seq",
		`SELECT seq::text AS key, revision FROM router_history WHERE endpoint = $1 ORDER BY seq`, name)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	return out, nil
}
