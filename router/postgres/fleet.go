package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/router"
)

// FleetRetention is how long a replica's figures are kept after it last
// published them: a replica gone for longer no longer counts.
const FleetRetention = 24 * time.Hour

// Fleet is a router.Fleet in PostgreSQL: the replicas sharing the database
// publish their figures in one table, which each reads. It needs the tables
// of Schema and does not own its pool.
type Fleet struct {
	pool *pgxpool.Pool
}

var _ router.Fleet = (*Fleet)(nil)

// NewFleet returns a Fleet in the database of pool, which pgdb.Migrate has
// brought to Schema.
func NewFleet(pool *pgxpool.Pool) *Fleet { return &Fleet{pool: pool} }

// Publish implements router.Fleet, in one transaction: it stores each of the
// figures as the replica's row of that endpoint and revision, deletes the
// replica's rows of the revisions it did not publish (those it no longer
// serves, endpoints it no longer has), and the rows no replica refreshed
// within FleetRetention. An endpoint listed twice is an error.
func (f *Fleet) Publish(ctx context.Context, replica string, figures []router.EndpointFigures) error {
	names := make([]string, len(figures))
	revisions := make([]int32, len(figures))
	docs := make([]string, len(figures))
	for i, fig := range figures {
		doc, err := json.Marshal(fig.Stats)
		if err != nil {
			return fmt.Errorf("encode the figures of endpoint %s revision %d: %w", fig.Endpoint, fig.Revision, err)
		}
		names[i], revisions[i], docs[i] = fig.Endpoint, int32(fig.Revision), string(doc)
	}
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO router_fleet_figures (endpoint, revision, replica, stats, updated_at)
			SELECT p.endpoint, p.revision, $1, p.stats::jsonb, now()
			FROM unnest($2::text[], $3::int[], $4::text[]) AS p(endpoint, revision, stats)
			ON CONFLICT (endpoint, revision, replica)
			DO UPDATE SET stats = EXCLUDED.stats, updated_at = EXCLUDED.updated_at`,
			replica, names, revisions, docs); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			DELETE FROM router_fleet_figures f
			WHERE (f.replica = $1 AND (f.endpoint, f.revision) NOT IN (SELECT * FROM unnest($2::text[], $3::int[])))
			   OR f.updated_at < now() - make_interval(secs => $4)`,
			replica, names, revisions, FleetRetention.Seconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("publish the figures of replica %s: %w", replica, err)
	}
	return nil
}

// Figures implements router.Fleet.
func (f *Fleet) Figures(ctx context.Context, endpoint string, revision int) (map[string]router.StatsSnapshot, error) {
	rows, err := f.pool.Query(ctx, `SELECT replica, stats FROM router_fleet_figures WHERE endpoint = $1 AND revision = $2`, endpoint, revision)
	if err != nil {
		return nil, fmt.Errorf("read the fleet's figures of endpoint %s revision %d: %w", endpoint, revision, err)
	}
	out := map[string]router.StatsSnapshot{}
	var replica string
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&replica, &raw}, func() error {
		var s router.StatsSnapshot
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decode the figures of replica %s: %w", replica, err)
		}
		out[replica] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the fleet's figures of endpoint %s revision %d: %w", endpoint, revision, err)
	}
	return out, nil
}
