package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/testservers"
)

const (
	testLock     = 4242
	testInterval = 100 * time.Millisecond
	failoverGoal = 5 * time.Second
)

// fleet is n electors of testLock on one database, each counting the OnLead
// calls it has running, closed when the test ends.
type fleet struct {
	dsn     string
	es      []*Elector
	running []atomic.Int32
	terms   chan int64 // every term an OnLead began, in order
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := emptyFleet(t)
	for range n {
		f.add(t, f.direct, testInterval)
	}
	f.start()
	return f
}

func emptyFleet(t *testing.T) *fleet {
	return &fleet{dsn: testservers.Postgres(t), running: make([]atomic.Int32, 10), terms: make(chan int64, 100)}
}

func (f *fleet) direct(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, f.dsn) }

// add adds an elector that connects with connect; its OnLead counts itself
// running and reports its term.
func (f *fleet) add(t *testing.T, connect Connect, interval time.Duration) *Elector {
	t.Helper()
	i := len(f.es)
	e := New(connect, testLock, Options{
		Interval: interval,
		OnLead: func(ctx context.Context, term int64) {
			f.running[i].Add(1)
			defer f.running[i].Add(-1)
			f.terms <- term
			<-ctx.Done()
		},
	})
	f.es = append(f.es, e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close elector %d: %v", i, err)
		}
	})
	return e
}

func (f *fleet) start() {
	for _, e := range f.es {
		e.Start()
	}
}

// leaders returns the indexes of the electors that report themselves leader.
func (f *fleet) leaders() []int {
	var ls []int
	for i, e := range f.es {
		if e.IsLeader() {
			ls = append(ls, i)
		}
	}
	return ls
}

// leader waits up to failoverGoal for exactly one elector other than not to
// lead and returns it and how long that took.
func (f *fleet) leader(t *testing.T, not int) (int, time.Duration) {
	t.Helper()
	var who int
	took := waitFor(t, failoverGoal, func() bool {
		ls := f.leaders()
		if len(ls) == 1 && ls[0] != not {
			who = ls[0]
			return true
		}
		return false
	})
	return who, took
}

// waitFor polls cond every millisecond until it holds, and fails the test if
// it does not within d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("not so within %v", d)
		}
		<-tick.C
	}
	return time.Since(start)
}

// watch samples the fleet every millisecond until stop and returns the most
// electors that reported themselves leader at once.
func (f *fleet) watch() (stop func() int) {
	var most atomic.Int32
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if n := int32(len(f.leaders())); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() int {
		close(done)
		wg.Wait()
		return int(most.Load())
	}
}

func (f *fleet) conn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// holderPID returns the server process holding testLock, as pg_locks shows it.
func holderPID(t *testing.T, c *pgx.Conn) uint32 {
	t.Helper()
	var pid uint32
	err := c.QueryRow(context.Background(), `SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1`, testLock).Scan(&pid)
	if err != nil {
		t.Fatalf("holder of lock %d: %v", testLock, err)
	}
	return pid
}

// TestOneLeaderAtATime samples three electors every millisecond for two
// seconds: exactly one leads throughout, it holds the lock in the server,
// and its OnLead runs once, in term 1.
func TestOneLeaderAtATime(t *testing.T) {
	f := newFleet(t, 3)
	first, took := f.leader(t, -1)
	t.Logf("first leader elected after %v", took)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(2 * time.Second)
	for samples := 0; time.Now().Before(end); samples++ {
		if ls := f.leaders(); len(ls) != 1 || ls[0] != first {
			t.Fatalf("after %d samples, leaders %v, want [%d]", samples, ls, first)
		}
		<-tick.C
	}
	term, ctx, ok := f.es[first].Leadership()
	if !ok || term != 1 || ctx.Err() != nil {
		t.Errorf("Leadership() = %d, %v, %v; want term 1, a live context, true", term, ctx, ok)
	}
	if pid, want := holderPID(t, f.conn(t)), f.es[first].term.Load().pid; pid != want {
		t.Errorf("lock held by server process %d, leader's session is %d", pid, want)
	}
	for i := range f.es {
		want := int32(0)
		if i == first {
			want = 1
		}
		if n := f.running[i].Load(); n != want {
			t.Errorf("elector %d runs OnLead %d times, want %d", i, n, want)
		}
	}
	if got := <-f.terms; got != 1 || len(f.terms) != 0 {
		t.Errorf("OnLead began term %d and %d more, want term 1 alone", got, len(f.terms))
	}
}

// TestCloseHandsOver closes the leader twice in turn: each time another
// elector leads within 5 s, in the next term, the closed one's OnLead has
// returned, and never two lead at once.
func TestCloseHandsOver(t *testing.T) {
	f := newFleet(t, 3)
	old, _ := f.leader(t, -1)
	for want := int64(2); want <= 3; want++ {
		stop := f.watch()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		if err := f.es[old].Close(ctx); err != nil {
			t.Fatalf("close leader: %v", err)
		}
		cancel()
		next, _ := f.leader(t, old)
		took := time.Since(start)
		if most := stop(); most > 1 {
			t.Errorf("%d electors led at once during the handover", most)
		}
		t.Logf("failover after Close: %v (Close returned, then elector %d led)", took, next)
		if took > failoverGoal {
			t.Errorf("failover took %v, want under %v", took, failoverGoal)
		}
		if got := f.es[next].Term(); got != want {
			t.Errorf("new leader's term %d, want %d", got, want)
		}
		if n := f.running[old].Load(); n != 0 {
			t.Errorf("closed leader's OnLead still running")
		}
		if f.es[old].IsLeader() || f.es[old].Term() != 0 {
			t.Errorf("closed elector still reports itself leader")
		}
		old = next
	}
}

// TestKilledSessionStepsDown ends the leader's session from outside: it
// steps down, its term's context is cancelled, another leads within 5 s in
// the next term, and the old one rejoins as a follower.
func TestKilledSessionStepsDown(t *testing.T) {
	f := newFleet(t, 3)
	admin := f.conn(t)
	old, _ := f.leader(t, -1)
	term, tctx, _ := f.es[old].Leadership()
	pid := holderPID(t, admin)
	start := time.Now()
	if _, err := admin.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	stepped := waitFor(t, failoverGoal, func() bool { return !f.es[old].IsLeader() })
	next, _ := f.leader(t, old)
	took := time.Since(start)
	t.Logf("session %d terminated: old leader stepped down after %v, elector %d led after %v", pid, stepped, next, took)
	if tctx.Err() == nil {
		t.Error("old term's context not cancelled")
	}
	if got := f.es[next].Term(); got != term+1 {
		t.Errorf("new term %d, want %d", got, term+1)
	}
	if got := holderPID(t, admin); got == pid {
		t.Errorf("lock still held by terminated session %d", pid)
	}
	// The old leader reconnects and follows: the leader stays the leader.
	time.Sleep(5 * testInterval)
	if ls := f.leaders(); len(ls) != 1 || ls[0] != next {
		t.Errorf("leaders %v after the old one reconnected, want [%d]", ls, next)
	}
}

// TestFence: a decision fenced in a leader's term holds the next term back
// until it commits; after that, the old term's decisions are refused and the
// new term's are taken.
func TestFence(t *testing.T) {
	f := newFleet(t, 2)
	ctx := context.Background()
	admin := f.conn(t)
	if _, err := admin.Exec(ctx, "CREATE TABLE decisions (term bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	decide := func(c *pgx.Conn, term int64, commit bool) (pgx.Tx, error) {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := Fence(ctx, tx, testLock, term); err != nil {
			_ = tx.Rollback(ctx)
			return nil, err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO decisions VALUES ($1)", term); err != nil {
			t.Fatal(err)
		}
		if commit {
			return nil, tx.Commit(ctx)
		}
		return tx, nil
	}

	old, _ := f.leader(t, -1)
	oldTerm := f.es[old].Term()
	open, err := decide(f.conn(t), oldTerm, false)
	if err != nil {
		t.Fatalf("fence the leader's own term: %v", err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", holderPID(t, admin)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, failoverGoal, func() bool { return !f.es[old].IsLeader() })
	// The other elector takes the lock but cannot begin its term while the
	// old term's decision is open.
	time.Sleep(5 * testInterval)
	if ls := f.leaders(); len(ls) != 0 {
		t.Fatalf("leaders %v while the old term's decision is open, want none", ls)
	}
	if err := open.Commit(ctx); err != nil {
		t.Fatalf("commit the old term's decision: %v", err)
	}
	next, took := f.leader(t, -1)
	t.Logf("elector %d led %v after the old term's decision committed", next, took)
	newTerm := f.es[next].Term()
	if newTerm <= oldTerm {
		t.Fatalf("new term %d, want above %d", newTerm, oldTerm)
	}

	_, err = decide(admin, oldTerm, true)
	if !errors.Is(err, ErrStale) || !errors.Is(err, errkind.Conflict) {
		t.Errorf("stale decision: err %v, want ErrStale, a Conflict", err)
	}
	if _, err := decide(admin, newTerm, true); err != nil {
		t.Errorf("decision of the current term: %v", err)
	}
	rows, err := admin.Query(ctx, "SELECT term FROM decisions ORDER BY term")
	if err != nil {
		t.Fatal(err)
	}
	terms, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(terms) != 2 || terms[0] != oldTerm || terms[1] != newTerm {
		t.Errorf("decisions taken in terms %v, want [%d %d]", terms, oldTerm, newTerm)
	}

	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := Fence(ctx, tx, testLock+1, 1); !errors.Is(err, ErrStale) {
		t.Errorf("fence a lock no one has led: err %v, want ErrStale", err)
	}
}

// TestCloseBeforeStart: an elector never started closes at once, as does a
// closed one closed again.
func TestCloseBeforeStart(t *testing.T) {
	e := New(func(ctx context.Context) (*pgx.Conn, error) { return nil, errors.New("not called") }, testLock, Options{})
	for range 2 {
		if err := e.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	e.Start()
	if e.IsLeader() {
		t.Error("a closed elector leads")
	}
}
