package pgdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema is the schema history of one store, kept in the store's package
// (registry/postgres embeds its own). Its files sit in directory Dir of FS,
// named <version>_<what>.sql (0001_models.sql, 0002_model_index.sql): versions
// count from 1 without gaps, each file is applied once, in version order, and
// a released file is never edited; a change is a new file.
type Schema struct {
	// Owner names the store in schema_migrations ("registry"). Each owner's
	// versions count on their own, so stores add migrations independently.
	Owner string
	FS    fs.FS
	// Dir is the files' directory in FS; empty means its root.
	Dir string
}

// ErrSchemaTooNew is matched by Migrate's error when the database records a
// version of a schema newer than the binary knows: a newer mlgate has
// migrated it, and this one would misread its tables.
var ErrSchemaTooNew = errors.New("database schema is newer than this mlgate")

type migration struct {
	version int
	file    string
	sql     string
}

// migrations reads the schema's files in version order.
func (s Schema) migrations() ([]migration, error) {
	if s.Owner == "" {
		return nil, errors.New("schema without an owner")
	}
	files, err := fs.Glob(s.FS, path.Join(cmp.Or(s.Dir, "."), "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list %s migrations: %w", s.Owner, err)
	}
	out := make([]migration, 0, len(files))
	for _, f := range files {
		prefix, _, ok := strings.Cut(path.Base(f), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("%s migration %s: want a name <version>_<what>.sql with a version from 1", s.Owner, f)
		}
		sql, err := fs.ReadFile(s.FS, f)
		if err != nil {
			return nil, fmt.Errorf("read %s migration %s: %w", s.Owner, f, err)
		}
		out = append(out, migration{version: v, file: path.Base(f), sql: string(sql)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("%s migration %s has version %d; want %d (versions count from 1 without gaps or repeats)", s.Owner, m.file, m.version, i+1)
		}
	}
	return out, nil
}

// Migrate brings the database to the latest version of every schema, in the
// order given (a schema whose tables refer to another's comes after it). It
// applies the missing migrations in one transaction, recording each in the
// table schema_migrations, so that the database ends at the new versions or,
// on any error, stays as it was. Replicas starting at once each call
// Migrate: a transaction-scoped advisory lock makes them take turns, and
// every migration is applied once. A database recording a version newer
// than a schema's files gives an error matching ErrSchemaTooNew and changes
// nothing.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schemas ...Schema) error {
	steps := make([][]migration, len(schemas))
	for i, s := range schemas {
		if slices.ContainsFunc(schemas[:i], func(o Schema) bool { return o.Owner == s.Owner }) {
			return fmt.Errorf("schema %s given twice", s.Owner)
		}
		var err error
		if steps[i], err = s.migrations(); err != nil {
			return err
		}
	}
	// Read committed: each statement sees what the replica that held the
	// lock before this one committed. (Under repeatable read the snapshot
	// would date from before the lock was granted.)
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mlgate schema_migrations', 0))`); err != nil {
		return fmt.Errorf("migrate: wait for other replicas: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		owner      text NOT NULL,
		version    integer NOT NULL,
		file       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (owner, version)
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for i, s := range schemas {
		var current int
		err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations WHERE owner = $1`, s.Owner).Scan(&current)
		if err != nil {
			return fmt.Errorf("migrate: read the %s schema version: %w", s.Owner, err)
		}
		if known := len(steps[i]); current > known {
			return fmt.Errorf("%w: the %s schema is at version %d, and this mlgate knows versions up to %d; run a newer mlgate, or point %s at another database",
				ErrSchemaTooNew, s.Owner, current, known, DSNKey)
		}
		for _, m := range steps[i][current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate: apply %s migration %s: %w", s.Owner, m.file, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (owner, version, file) VALUES ($1, $2, $3)`, s.Owner, m.version, m.file); err != nil {
				return fmt.Errorf("migrate: record %s migration %s: %w", s.Owner, m.file, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
