package leader

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// proxy forwards TCP connections to a server until frozen; frozen, it
// forwards nothing more and closes nothing, as a network partition or a
// paused host does. cut closes the connections, as the death of the
// process at one end does.
type proxy struct {
	ln       net.Listener
	target   string
	frozen   chan struct{}
	freezeMu sync.Once
	mu       sync.Mutex
	closed   bool
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, frozen: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) freeze() { p.freezeMu.Do(func() { close(p.frozen) }) }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		select {
		case <-p.frozen: // no new connection crosses a partition
			c.Close()
			continue
		default:
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(s, c) })
		p.wg.Go(func() { p.pipe(c, s) })
	}
}

// pipe copies src to dst until either fails, then closes both; once the
// proxy is frozen it drops what it reads and closes nothing.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// viaProxy returns a fleet whose elector 0 connects through a proxy and
// leads, while electors 1 and 2 connect directly and wait on the lock.
func viaProxy(t *testing.T, interval time.Duration) (*fleet, *proxy) {
	t.Helper()
	f := emptyFleet(t)
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(p.ln.Addr().String())
	portN, _ := strconv.Atoi(port)
	connect := func(ctx context.Context) (*pgx.Conn, error) {
		c := cfg.Copy()
		c.Host, c.Port = host, uint16(portN)
		return pgx.ConnectConfig(ctx, c)
	}
	f.add(t, connect, interval).Start()
	f.leader(t, -1)
	f.add(t, f.direct, interval).Start()
	f.add(t, f.direct, interval).Start()
	admin := f.conn(t)
	waitFor(t, failoverGoal, func() bool {
		var waiting int
		err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting)
		return err == nil && waiting == 2
	})
	return f, p
}

// TestLeaderDies closes the leader's connection without a word to the
// server, as the kernel does when the process is killed: the server frees
// the lock at once and another elector leads.
func TestLeaderDies(t *testing.T) {
	f, p := viaProxy(t, testInterval)
	start := time.Now()
	p.cut()
	next, _ := f.leader(t, 0)
	t.Logf("leader's connection cut: elector %d led after %v", next, time.Since(start))
	if got := f.es[next].Term(); got != 2 {
		t.Errorf("new term %d, want 2", got)
	}
}

// TestSilentLeader cuts the leader off from the server without closing its
// connection: it steps down within two Intervals, before the server ends
// its silent session after three and frees the lock; another elector then
// leads within 5 s, and never do two lead at once.
func TestSilentLeader(t *testing.T) {
	const interval = 200 * time.Millisecond
	f, p := viaProxy(t, interval)
	stop := f.watch()
	start := time.Now()
	p.freeze()
	stepped := waitFor(t, failoverGoal, func() bool { return !f.es[0].IsLeader() })
	next, _ := f.leader(t, 0)
	took := time.Since(start)
	most := stop()
	t.Logf("leader cut off (Interval %v): stepped down after %v, elector %d led after %v", interval, stepped, next, took)
	if stepped > 3*interval {
		t.Errorf("stepped down after %v, want about two Intervals (%v), before the server frees the lock after three", stepped, 2*interval)
	}
	if most > 1 {
		t.Errorf("%d electors led at once", most)
	}
	if took > failoverGoal {
		t.Errorf("failover took %v, want under %v", took, failoverGoal)
	}
}
