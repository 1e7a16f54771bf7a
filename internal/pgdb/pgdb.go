// Package pgdb holds what the control plane's PostgreSQL stores share:
// opening a connection pool from the configured DSN, and applying each
// store's versioned schema migrations at start-up, safely when several
// replicas start at once.
package pgdb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNKey is the configuration key that holds the DSN; errors about the DSN
// name it.
const DSNKey = "control_plane.postgres.dsn"

// ConnectTimeout bounds each connection attempt when the DSN sets no
// connect_timeout of its own.
const ConnectTimeout = 5 * time.Second

// Open returns a pool of connections to the database dsn names, having
// connected once to check that it answers. dsn is a URL
// (postgres://user:password@host:port/database?sslmode=require) or key=value
// pairs. A DSN that does not parse, or a server that cannot be reached or
// refuses the login, gives an error that names DSNKey and never the password.
// The caller closes the pool.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, fmt.Errorf("config key %s: must not be empty", DSNKey)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its message only on a best-effort basis
		// for malformed input, so none of the message is repeated.
		return nil, fmt.Errorf("config key %s: not a PostgreSQL connection string (want postgres://user:password@host:port/database or key=value pairs such as host=db user=mlgate)", DSNKey)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("config key %s: %w", DSNKey, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL (config key %s): %w", DSNKey, err)
	}
	return pool, nil
}
