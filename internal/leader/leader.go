// Package leader chooses one leader among the gateway's replicas with a
// PostgreSQL advisory lock, for the jobs a fleet must run once: the canary
// controller, drift judgement and its webhooks.
//
// An Elector holds the lock on a connection of its own (an advisory lock
// belongs to a session) and leads while it holds it. A new leader begins a
// term before it reports itself leader: under the lock, it increments its
// lock's row in the table mlgate_leader_terms, which it creates if need be.
//
// What is guaranteed:
//
//   - PostgreSQL grants the lock to one session at a time, so one elector at
//     a time begins a term, and each term's number is higher than the last.
//   - A follower waits on the lock in the server, so it takes over as soon as
//     the server frees it: at once when the leader closes or its process dies
//     (the socket closes), within three Intervals when the leader falls
//     silent (the server ends a session idle that long: idle_session_timeout,
//     PostgreSQL 14 or later).
//   - A leader steps down (IsLeader turns false, its term's context is
//     cancelled) as soon as it learns its session is gone: at once when the
//     server ends it (pg_terminate_backend, a restart), and within two
//     Intervals when the server stops answering, which is before the server
//     frees the lock of a silent session.
//
// What is not: that a leader's work has stopped when the next one's begins.
// The server frees the lock a moment before the old leader hears of it, a
// process paused by its host acts on a belief that is seconds old, and work
// in flight when the context is cancelled may still finish. So a decision
// must be fenced: written in a transaction that first calls Fence with the
// term it was taken in. Fence refuses a term that has ended, and a term
// cannot end while a transaction that fenced it is open (the next leader's
// increment waits for it), so a decision read and written in one fenced
// transaction, with its audit row, is taken once. Work outside PostgreSQL (a
// webhook call) cannot be fenced: record it in a fenced transaction first,
// and send it at least once under that record's id for the receiver to
// deduplicate.
//
// The connection must reach PostgreSQL directly or through a session pooler,
// never a transaction pooler (PgBouncer in transaction mode), which would
// share the session and its lock.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/recovery"
)

// ErrStale is the kind of Fence's refusal: a newer term has begun, so the
// decision in hand was taken by a leader that no longer leads.
var ErrStale = errkind.New(errkind.Conflict, "leadership term has ended")

// connectTimeout bounds a connection attempt. Followers are connected
// already, so it does not lengthen a failover.
const connectTimeout = 5 * time.Second

const (
	createTable = `CREATE TABLE IF NOT EXISTS mlgate_leader_terms (
	lock_id bigint PRIMARY KEY,
	term bigint NOT NULL,
	holder text NOT NULL,
	began timestamptz NOT NULL
)`
	beginTerm = `INSERT INTO mlgate_leader_terms AS t (lock_id, term, holder, began)
VALUES ($1, 1, $2, now())
ON CONFLICT (lock_id) DO UPDATE SET term = t.term + 1, holder = excluded.holder, began = excluded.began
RETURNING term`
	fenceTerm = `SELECT term FROM mlgate_leader_terms WHERE lock_id = $1 FOR SHARE`
)

// Connect opens a connection that the Elector then owns and closes. With a
// DSN: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }.
// With a pgxpool.Pool, take a connection out of the pool for good, so that
// the pool never hands the lock's session to anyone else:
// c, err := pool.Acquire(ctx); if err != nil { return nil, err }; return c.Hijack(), nil.
type Connect func(ctx context.Context) (*pgx.Conn, error)

// Options tune an Elector. The zero value is usable.
type Options struct {
	// Interval is how often a leader checks its connection (a check
	// unanswered within Interval steps it down) and how long a follower
	// waits on the lock in the server before it checks its own. The server
	// ends a session silent for three Intervals, freeing its lock. Default
	// 1 s, which bounds a failover to about 3 s.
	Interval time.Duration
	// Holder names this replica in the terms table; default host/pid.
	Holder string
	// OnLead, if set, runs on a goroutine of its own at the start of each
	// term this elector leads, with the term's number and a context
	// cancelled when the term ends. It should return soon after: the elector
	// begins no new term before it has, and on Close it waits up to Interval
	// before it frees the lock anyway.
	OnLead func(ctx context.Context, term int64)
	// Log receives elections, step-downs and their reasons; default none.
	Log *slog.Logger
}

// Elector takes part in the election of one lock: it leads while it holds
// the lock, and waits on it otherwise. Its methods are safe for concurrent
// use.
type Elector struct {
	connect Connect
	lockID  int64
	opts    Options

	term   atomic.Pointer[term] // nil while following
	start  sync.Once
	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the election goroutine has ended

	// onLead is closed when the last OnLead call has returned; only the
	// election goroutine touches it.
	onLead chan struct{}
}

// term is the tenure in which an elector leads.
type term struct {
	n   int64
	ctx context.Context
	pid uint32 // the server process of the lock's session
}

// New returns an Elector for the advisory lock lockID that connects with
// connect. It takes no part in the election until Start.
func New(connect Connect, lockID int64, opts Options) *Elector {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Elector{connect: connect, lockID: lockID, opts: opts, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// Start joins the election on a goroutine of its own, until Close. Later
// calls, and calls after Close, do nothing.
func (e *Elector) Start() {
	e.start.Do(func() { go e.run() })
}

// Close leaves the election: if e leads, it ends the term (IsLeader turns
// false and the term's context is cancelled), waits up to Interval for
// OnLead to return, and frees the lock by closing its connection. It then
// waits for OnLead to return, or returns ctx's error if ctx ends first.
func (e *Elector) Close(ctx context.Context) error {
	e.start.Do(func() { close(e.done) })
	e.cancel()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leadership returns the number of the term e leads and a context cancelled
// when that term ends, or ok false while e follows. A decision taken in the
// term is written with Fence(ctx, tx, lockID, term).
func (e *Elector) Leadership() (term int64, ctx context.Context, ok bool) {
	t := e.term.Load()
	if t == nil {
		return 0, nil, false
	}
	return t.n, t.ctx, true
}

// IsLeader reports whether e leads.
func (e *Elector) IsLeader() bool { return e.term.Load() != nil }

// Term returns the number of the term e leads, or 0 while it follows.
func (e *Elector) Term() int64 {
	if t := e.term.Load(); t != nil {
		return t.n
	}
	return 0
}

// Fence checks, inside tx, that term is still the current term of lockID,
// and keeps that true until tx ends: it share-locks the term's row, which the
// next leader must update to begin its term. It returns an error of kind
// ErrStale if a newer term has begun (or none ever has), and the database's
// error otherwise. Call it in the transaction that writes the decision,
// before the write; a transaction at REPEATABLE READ or above may also fail
// with a serialization error if a term began after its snapshot.
func Fence(ctx context.Context, tx pgx.Tx, lockID, term int64) error {
	var cur int64
	err := tx.QueryRow(ctx, fenceTerm, lockID).Scan(&cur)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("fence term %d of lock %d: no term has begun: %w", term, lockID, ErrStale)
	case err != nil:
		return fmt.Errorf("fence term %d of lock %d: %w", term, lockID, err)
	case cur != term:
		return fmt.Errorf("fence term %d of lock %d: term %d has begun: %w", term, lockID, cur, ErrStale)
	}
	return nil
}

// run takes part in the election, a session at a time, until Close.
func (e *Elector) run() {
	defer close(e.done)
	for {
		err := e.session()
		if e.ctx.Err() != nil {
			break
		}
		e.opts.Log.Warn("leader election session ended; reconnecting", "lock", e.lockID, "in", e.opts.Interval, "err", err)
		select {
		case <-e.ctx.Done():
		case <-time.After(e.opts.Interval):
		}
	}
	if e.onLead != nil {
		<-e.onLead
	}
}

// session connects, waits for the lock and leads until the connection fails
// or Close; closing the connection frees the lock.
func (e *Elector) session() error {
	ctx, iv := e.ctx, e.opts.Interval
	if e.onLead != nil {
		select {
		case <-e.onLead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := e.connect(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), iv)
		defer cancel()
		conn.Close(cctx)
	}()
	// A silent session is ended, and its lock freed, after three Intervals;
	// a wait on the lock gives up after one, to check the connection.
	qctx, cancel := context.WithTimeout(ctx, iv)
	_, err = conn.Exec(qctx, "SELECT set_config('idle_session_timeout', $1, false), set_config('lock_timeout', $2, false)",
		fmt.Sprintf("%dms", (3*iv).Milliseconds()), fmt.Sprintf("%dms", iv.Milliseconds()))
	cancel()
	if err != nil {
		return fmt.Errorf("set session timeouts: %w", err)
	}
	for {
		got, err := e.lock(ctx, conn)
		if err != nil {
			return err
		}
		if got {
			break
		}
	}
	n, err := e.begin(ctx, conn)
	if err != nil {
		return err
	}
	err = e.lead(ctx, conn, n)
	if err == nil && e.onLead != nil { // closing: let OnLead finish before the lock is freed
		select {
		case <-e.onLead:
		case <-time.After(iv):
			e.opts.Log.Warn("OnLead still running after its term ended; freeing the lock", "lock", e.lockID, "term", n)
		}
	}
	return err
}

// lock waits up to Interval, in the server, for the lock. A wait that times
// out there is no error: it shows the connection works.
func (e *Elector) lock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*e.opts.Interval)
	defer cancel()
	_, err := conn.Exec(qctx, "SELECT pg_advisory_lock($1)", e.lockID)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("wait for lock %d: %w", e.lockID, err)
	}
	return true, nil
}

// begin begins a term under the lock and returns its number.
func (e *Elector) begin(ctx context.Context, conn *pgx.Conn) (int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*e.opts.Interval)
	defer cancel()
	if _, err := conn.Exec(qctx, createTable); err != nil {
		return 0, fmt.Errorf("create terms table: %w", err)
	}
	var n int64
	if err := conn.QueryRow(qctx, beginTerm, e.lockID, e.opts.Holder).Scan(&n); err != nil {
		return 0, fmt.Errorf("begin term of lock %d: %w", e.lockID, err)
	}
	return n, nil
}

// lead reports e leader of term n and checks the connection every Interval,
// listening on it in between so that the server ending the session is heard
// at once. It returns nil on Close and why it stepped down otherwise; either
// way the term has ended when it returns.
func (e *Elector) lead(ctx context.Context, conn *pgx.Conn, n int64) error {
	iv := e.opts.Interval
	tctx, end := context.WithCancel(ctx)
	t := &term{n: n, ctx: tctx, pid: conn.PgConn().PID()}
	e.term.Store(t)
	defer end()
	defer e.term.Store(nil)
	e.opts.Log.Info("leading", "lock", e.lockID, "term", n, "holder", e.opts.Holder, "pid", t.pid)
	if f := e.opts.OnLead; f != nil {
		done := make(chan struct{})
		e.onLead = done
		go func() {
			defer close(done)
			_ = recovery.Do(e.opts.Log, "leader.OnLead", func() { f(tctx, n) })
		}()
	}
	stepDown := func(err error) error {
		e.opts.Log.Warn("stepping down", "lock", e.lockID, "term", n, "err", err)
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, iv)
		err := conn.PgConn().WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			e.opts.Log.Info("stepping down: closing", "lock", e.lockID, "term", n)
			return nil
		}
		if err != nil && !timedOut {
			return stepDown(fmt.Errorf("connection lost: %w", err))
		}
		pctx, cancel := context.WithTimeout(ctx, iv)
		_, err = conn.Exec(pctx, "SELECT 1")
		cancel()
		if ctx.Err() != nil {
			e.opts.Log.Info("stepping down: closing", "lock", e.lockID, "term", n)
			return nil
		}
		if err != nil {
			return stepDown(fmt.Errorf("check connection: %w", err))
		}
	}
}
