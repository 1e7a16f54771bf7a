package gateway

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/drift"
	driftbolt "github.com/mlgate/mlgate/drift/bolt"
	driftpg "github.com/mlgate/mlgate/drift/postgres"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/embedded"
	featurespg "github.com/mlgate/mlgate/featurestore/postgres"
	changespg "github.com/mlgate/mlgate/internal/changes/postgres"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/leader"
	"github.com/mlgate/mlgate/internal/pgdb"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/bolt"
	"github.com/mlgate/mlgate/registry/localfs"
	registrypg "github.com/mlgate/mlgate/registry/postgres"
	"github.com/mlgate/mlgate/router"
	routerbolt "github.com/mlgate/mlgate/router/bolt"
	routerpg "github.com/mlgate/mlgate/router/postgres"
)

// controlPlane is where the registry, the feature views, the endpoints and
// the monitors are kept: bbolt files in the data directory for one process,
// or one PostgreSQL database that a fleet shares (control_plane.store).
type controlPlane struct {
	meta      registry.MetaStore
	artifacts registry.ArtifactStore
	views     featurestore.ViewStore
	routes    router.Store
	monitors  drift.Store
	// embedded is the embedded online store, which also keeps the views in
	// embedded mode; nil in a fleet, where one replica's file would serve
	// features the others cannot see.
	embedded *embedded.Store

	// In a fleet only: the database, the change feed and the election.
	pool    *pgxpool.Pool
	feed    *changespg.Feed
	elector *leader.Elector
	replica string
}

// leaderLock is the advisory lock the replicas of a fleet elect their leader
// with: the one that runs the canary controller and judges drift.
const leaderLock int64 = 0x6d6c67617465 // "mlgate"

//go:embed migrations/*.sql
var migrations embed.FS

// settingsSchema holds what the replicas share that no store owns (the PII
// key).
var settingsSchema = pgdb.Schema{Owner: "gateway", FS: migrations, Dir: "migrations"}

// fleetSchemas are the control plane's schemas, in the order they migrate:
// the change log's triggers name the other tables.
var fleetSchemas = []pgdb.Schema{registrypg.Schema, featurespg.Schema, routerpg.Schema, driftpg.Schema, changespg.Schema, settingsSchema}

// openControlPlane opens the configured control plane's stores; g closes
// them.
func (g *Gateway) openControlPlane(ctx context.Context, cfg config.Config) (*controlPlane, error) {
	cp := &controlPlane{replica: cfg.ControlPlane.ReplicaID}
	if cp.replica == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("config key control_plane.replica_id: not set, and the host name is unknown: %w", err)
		}
		cp.replica = host
	}
	if !cfg.ControlPlane.Fleet() {
		return cp, g.openEmbedded(cfg, cp)
	}
	return cp, g.openPostgres(ctx, cfg, cp)
}

func (g *Gateway) openEmbedded(cfg config.Config, cp *controlPlane) error {
	meta, err := bolt.Open(filepath.Join(cfg.DataDir, "registry.db"))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, meta.Close)
	if cp.artifacts, err = localfs.New(filepath.Join(cfg.DataDir, "artifacts")); err != nil {
		return err
	}
	// The embedded online store keeps the views' definitions too.
	if cp.embedded, err = embedded.Open(filepath.Join(cfg.DataDir, "features.db")); err != nil {
		return err
	}
	routes, err := routerbolt.Open(filepath.Join(cfg.DataDir, "endpoints.db"))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, routes.Close)
	monitors, err := driftbolt.Open(filepath.Join(cfg.DataDir, "monitors.db"))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, monitors.Close)
	cp.meta, cp.views, cp.routes, cp.monitors = meta, cp.embedded, routes, monitors
	return nil
}

// openPostgres connects to the fleet's database, brings its schema up to
// date (replicas starting at once take turns), reads the change log's
// revision before anything loads from the stores, and joins the leader
// election.
func (g *Gateway) openPostgres(ctx context.Context, cfg config.Config, cp *controlPlane) error {
	pool, err := pgdb.Open(ctx, cfg.ControlPlane.Postgres.DSN)
	if err != nil {
		return err
	}
	g.closers = append(g.closers, func() error { pool.Close(); return nil })
	if err := pgdb.Migrate(ctx, pool, fleetSchemas...); err != nil {
		return err
	}
	if cp.feed, err = changespg.New(ctx, pool, g.log); err != nil {
		return err
	}
	g.closers = append(g.closers, func() error { cp.feed.Close(); return nil })
	artifacts, err := registrypg.NewArtifactStore(pool, filepath.Join(cfg.DataDir, "model-cache"))
	if err != nil {
		return err
	}
	cp.pool, cp.meta, cp.artifacts = pool, registrypg.NewMetaStore(pool), artifacts
	cp.views, cp.routes, cp.monitors = featurespg.NewViewStore(pool), routerpg.NewStore(pool), driftpg.NewStore(pool)
	connConfig := pool.Config().ConnConfig.Copy()
	cp.elector = leader.New(func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, connConfig) },
		leaderLock, leader.Options{Holder: cp.replica, Log: g.log.With("replica", cp.replica)})
	g.closers = append(g.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), leaderCloseTimeout)
		defer cancel()
		return cp.elector.Close(ctx)
	})
	g.log.Info("control plane in PostgreSQL", "replica", cp.replica, "revision", cp.feed.Revision())
	return nil
}

// sharedPIIKey returns the fleet's PII key, made by the first replica that
// asks; ok is false outside a fleet.
func (cp *controlPlane) sharedPIIKey(ctx context.Context) (key []byte, ok bool, err error) {
	if cp.pool == nil {
		return nil, false, nil
	}
	fresh, err := newPIIKey()
	if err != nil {
		return nil, true, err
	}
	// Two replicas starting at once: the one whose insert waited on the
	// other's does not see that row in its own statement's snapshot, so it
	// asks again.
	for range 2 {
		var value string
		err = cp.pool.QueryRow(ctx, `WITH made AS (
				INSERT INTO fleet_settings (name, value) VALUES ('pii_key', $1) ON CONFLICT (name) DO NOTHING RETURNING value)
			SELECT value FROM made UNION ALL SELECT value FROM fleet_settings WHERE name = 'pii_key' LIMIT 1`, string(fresh)).Scan(&value)
		if err == nil {
			return []byte(value), true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	return nil, true, fmt.Errorf("the fleet's PII key: %w", err)
}

// isLeader reports whether this replica runs the fleet's periodic jobs:
// always when it is alone.
func (cp *controlPlane) isLeader() bool { return cp.elector == nil || cp.elector.IsLeader() }

// tablesReplica names the files this replica writes in the inference
// tables: its id in a fleet, whose replicas may share the directory; none
// for one process, whose files keep their names.
func (cp *controlPlane) tablesReplica() string {
	if cp.pool == nil {
		return ""
	}
	return cp.replica
}

// routerOptions make the replicas of a fleet publish their traffic figures
// each second, and the leader alone judge canaries and sample ratios on the
// fleet's merged figures.
func (cp *controlPlane) routerOptions() []router.ServiceOption {
	if cp.pool == nil {
		return nil
	}
	return []router.ServiceOption{router.WithFleet(routerpg.NewFleet(cp.pool), cp.replica), router.WithLeader(cp.isLeader)}
}

// driftOptions make the drift monitors of a fleet's replicas count into
// shared windows, judged by the leader alone.
func (cp *controlPlane) driftOptions() []drift.ServiceOption {
	if cp.pool == nil {
		return nil
	}
	return []drift.ServiceOption{drift.WithFleet(driftpg.NewFleet(cp.pool), cp.replica), drift.WithLeader(cp.isLeader)}
}

// start begins applying the fleet's changes through apply and joins the
// election, once everything that serves has loaded and subscribed.
func (cp *controlPlane) start(apply changespg.Apply, log *slog.Logger) {
	if cp.feed == nil {
		return
	}
	cp.feed.Start(apply)
	cp.elector.Start()
	log.Info("joined the fleet", "replica", cp.replica)
}
