// Package postgres carries the change hub's events between the replicas of a
// fleet through PostgreSQL. Triggers on the control plane's tables log every
// committed change of a model, view, endpoint or monitor in the table
// control_changes, numbered by revision in commit order, and NOTIFY the
// channel mlgate_changes; a Feed on each replica listens, reads the changes
// after the last revision it applied, and applies each through the hub, so
// that every subscriber rebuilds from the store as it does for a change
// made in its own process.
//
// A Feed misses nothing: a notification only wakes it, and what it applies
// is read from the log. After a reconnect, or when PostgreSQL was away, it
// reads every change since its revision; it also reads once every
// PollInterval, should a notification be lost. A change whose application
// fails (a model that does not load yet) is tried again at each poll until
// it applies or a later change of the same thing supersedes it. Changes
// apply more than once at worst (its own, which its hub applied already,
// and retries), never out of order, and subscribers rebuild from the store,
// so applying one twice changes nothing.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the change log and its triggers, for pgdb.Migrate. It names the
// tables of the registry, feature store, router and drift schemas, so it
// comes after them.
var Schema = pgdb.Schema{Owner: "changes", FS: migrations, Dir: "migrations"}

// Channel is the channel the triggers notify.
const Channel = "mlgate_changes"

// PollInterval is how often a Feed reads the log without a notification,
// and retries the changes that failed to apply.
const PollInterval = time.Second

// ApplicationName is the application_name of a Feed's connection, as
// pg_stat_activity shows it.
const ApplicationName = "mlgate change feed"

// batch bounds the changes read at once.
const batch = 1000

// Apply applies one change on this replica; a changes.Hub's Publish is one.
type Apply func(ctx context.Context, kind changes.Kind, name string) error

// Feed applies the fleet's changes on one replica. Its methods are safe for
// concurrent use.
type Feed struct {
	connect pgx.ConnConfig
	apply   Apply
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
	down    bool // the connection failed and has not come back; run's own

	mu      sync.Mutex
	applied int64            // the revision read up to
	failed  map[change]int64 // changes to retry, with their revision
}

type change struct {
	kind changes.Kind
	name string
}

// New reads the log's last revision, from which the feed applies changes
// once started. Call it before loading the stores, so that a change committed
// while they load is applied after.
func New(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*Feed, error) {
	f := &Feed{connect: *pool.Config().ConnConfig.Copy(), log: log, done: make(chan struct{}), failed: map[change]int64{}}
	f.connect.RuntimeParams["application_name"] = ApplicationName
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(revision), 0) FROM control_changes`).Scan(&f.applied); err != nil {
		return nil, fmt.Errorf("read the control plane's change log: %w", err)
	}
	f.cancel = func() {}
	close(f.done)
	return f, nil
}

// Start applies, with apply, every change after the feed's revision, on a
// connection of its own made from the pool's configuration, until Close.
// Call it once.
func (f *Feed) Start(apply Apply) {
	ctx, cancel := context.WithCancel(context.Background())
	f.apply, f.cancel, f.done = apply, cancel, make(chan struct{})
	go f.run(ctx)
}

// Revision returns the last revision of the log this replica has read and
// applied (or is retrying).
func (f *Feed) Revision() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// Close stops listening and waits for the change being applied.
func (f *Feed) Close() {
	f.cancel()
	<-f.done
}

// run listens, reconnecting after a second when the connection fails.
func (f *Feed) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		err := f.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if !f.down {
			f.log.Warn("control plane change feed disconnected; reconnecting (changes made meanwhile apply on return)", "err", err)
			f.down = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(PollInterval):
		}
	}
}

// listen holds one connection: LISTEN, then read the log after each
// notification and at each poll, until the connection fails.
func (f *Feed) listen(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, pgdb.ConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, &f.connect)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	if f.down {
		f.log.Info("control plane change feed reconnected", "revision", f.Revision())
		f.down = false
	}
	for {
		if err := f.catchUp(ctx, conn); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, PollInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return err
		}
	}
}

// catchUp applies the changes after the last revision read, then retries
// those that failed.
func (f *Feed) catchUp(ctx context.Context, conn *pgx.Conn) error {
	for {
		from := f.Revision()
		rows, err := conn.Query(ctx, `SELECT revision, kind, name FROM control_changes WHERE revision > $1 ORDER BY revision LIMIT $2`, from, batch)
		if err != nil {
			return err
		}
		var (
			rev  int64
			c    change
			kind string
			read []int64
			got  []change
		)
		_, err = pgx.ForEachRow(rows, []any{&rev, &kind, &c.name}, func() error {
			c.kind = changes.Kind(kind)
			read, got = append(read, rev), append(got, c)
			return nil
		})
		if err != nil {
			return err
		}
		if len(got) == 0 {
			break
		}
		f.applyAll(ctx, got, read)
		if len(got) < batch {
			break
		}
	}
	f.retry(ctx)
	return nil
}

// applyAll applies a batch in order, each thing once (at its last change in
// the batch: subscribers read the latest state anyway), then moves the
// revision past it.
func (f *Feed) applyAll(ctx context.Context, got []change, revs []int64) {
	last := map[change]int{}
	for i, c := range got {
		last[c] = i
	}
	for i, c := range got {
		if last[c] != i {
			continue
		}
		f.applyOne(ctx, c, revs[i])
	}
	f.advance(revs[len(revs)-1])
}

// applyOne applies c, remembering it for a retry when it fails.
func (f *Feed) applyOne(ctx context.Context, c change, rev int64) {
	err := f.apply(ctx, c.kind, c.name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		if r, ok := f.failed[c]; ok && r <= rev {
			delete(f.failed, c)
		}
		return
	}
	if _, again := f.failed[c]; !again {
		f.log.Error("change from the control plane not applied on this replica; retrying each second", "kind", c.kind, "name", c.name, "revision", rev, "err", err)
	}
	f.failed[c] = rev
}

// retry applies again the changes that failed.
func (f *Feed) retry(ctx context.Context) {
	f.mu.Lock()
	todo := make(map[change]int64, len(f.failed))
	for c, r := range f.failed {
		todo[c] = r
	}
	f.mu.Unlock()
	for c, r := range todo {
		f.applyOne(ctx, c, r)
		f.mu.Lock()
		_, still := f.failed[c]
		f.mu.Unlock()
		if !still {
			f.log.Info("change from the control plane applied after a retry", "kind", c.kind, "name", c.name, "revision", r)
		}
	}
}

func (f *Feed) advance(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = rev
}
