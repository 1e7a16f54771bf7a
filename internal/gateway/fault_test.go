package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore/cassandra"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
)

// The fault tests take an online store away from a gateway under steady
// load and bring it back, with the breaker settings of config.Defaults().
// They check what the issue asks: under 1% errors, answers marked degraded
// while the store is gone, its breaker open, and whole answers again within
// 2 s of the store's return.
const (
	faultWorkers = 4
	faultBefore  = 500 * time.Millisecond // load before the store goes
	faultOutage  = 2 * time.Second        // load while it is gone
	faultAfter   = 3 * time.Second        // load after it is back
	maxErrorRate = 0.01
	maxToWhole   = 2 * time.Second
)

// TestRedisFault stops a private redis-server (not the shared one of the
// other tests) under load, then starts it again on the same port.
func TestRedisFault(t *testing.T) {
	srv := startRedisServer(t)
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Redis.Addr = srv.addr
	cfg.OnlineStore.Default = "redis"
	runFault(t, cfg, "redis", srv.stop, srv.start)
}

// TestCassandraFault cuts the gateway off Cassandra under load, then lets
// it through again. The shared Cassandra cannot be stopped: the tests of
// other packages use it at the same time, and a second Cassandra is too
// heavy for CI (a JVM, a minute to start). So the gateway reaches it
// through a TCP proxy on a port of its own, which the test closes, listener
// and connections both, and opens again on the same port. What the driver
// sees is what it sees when the server dies: its connections reset, and
// new ones refused.
func TestCassandraFault(t *testing.T) {
	hosts := testservers.Cassandra(t)
	p := startProxy(t, hosts[0])
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Cassandra.Hosts = []string{p.addr}
	cfg.OnlineStore.Cassandra.Keyspace = fmt.Sprintf("gwfault%d", time.Now().UnixNano())
	t.Cleanup(func() {
		cs, err := cassandra.New(context.Background(), cassandra.Options{Hosts: hosts, Keyspace: cfg.OnlineStore.Cassandra.Keyspace, Timeout: 30 * time.Second})
		if err != nil {
			t.Errorf("drop the test keyspace: %v", err)
			return
		}
		defer cs.Close()
		if err := cs.DropKeyspace(context.Background()); err != nil {
			t.Errorf("drop the test keyspace: %v", err)
		}
	})
	runFault(t, cfg, "cassandra", p.cut, p.restore)
}

// The hung-store test freezes Redis under light load: a few callers at a
// time, too few to fail hungFailures calls in a row between two of the
// breaker's probes.
const (
	hungWorkers  = 2
	hungFor      = 4 * time.Second
	hungFailures = 1000        // online_store.breaker.failures: only the failure ratio may open it
	hungMargin   = time.Second // over the store timeout, for the model and the answer
)

// TestRedisHung freezes a private redis-server with SIGSTOP, as a stalled
// host or a long pause would: connections stay open and nothing answers.
// Predictions that read features are answered degraded within the store
// timeout (online_store.timeout) and a margin, not the request's deadline;
// the breaker opens on its failure ratio under light load; writes answer 503
// every time, and no answer of a feature route shows the server's address.
// After SIGCONT the answers are whole again.
func TestRedisHung(t *testing.T) {
	srv := startRedisServer(t)
	t.Cleanup(func() { srv.signal(syscall.SIGCONT) }) // runs before startRedisServer's kill
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Redis.Addr = srv.addr
	cfg.OnlineStore.Default = "redis"
	cfg.OnlineStore.Breaker.Failures = hungFailures
	// The first write meets a closed breaker and waits the write timeout
	// out: 1 s rather than the default 5 s keeps the test short.
	cfg.OnlineStore.WriteTimeout = config.Duration(time.Second)
	timeout := time.Duration(cfg.OnlineStore.Timeout)
	var logged testservers.Log
	g, err := Start(t.Context(), cfg, "test", slog.New(slog.NewJSONHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	// No cache: every prediction reads the store.
	for _, view := range []string{"user", "spare"} {
		call(t, g, "PUT", "/v1/feature-views/"+view, "application/json", strings.NewReader(
			`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}, {"name": "income", "type": "double"}, {"name": "visits", "type": "int"}]}`))
	}
	const writeRows = `{"rows": [{"user_id": "u1", "age": 21, "income": 1000.5, "visits": 1}]}`
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(writeRows))
	registerScorer(t, g)
	client := &http.Client{Timeout: 15 * time.Second}
	predict := func() answer {
		a := answer{start: time.Now()}
		resp, err := client.Post("http://"+g.Addr+"/v1/models/scorer/predict", "application/json",
			strings.NewReader(`{"entities": {"user_id": ["u1"]}, "request": {"hour": [1], "count": [1]}}`))
		if err != nil {
			return a
		}
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		if json.NewDecoder(resp.Body).Decode(&out) == nil {
			a.status, a.degraded = resp.StatusCode, string(out["degraded"]) == "true"
		}
		a.took = time.Since(a.start)
		return a
	}
	if a := predict(); a.status != 200 || a.degraded {
		t.Fatalf("before the freeze: %+v", a)
	}

	srv.signal(syscall.SIGSTOP)
	frozen := time.Now()
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range hungWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				a := predict()
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		})
	}

	// While Redis is frozen: the breaker opens, and every answer of the
	// feature routes is whole JSON without the server's address.
	_, port, _ := net.SplitHostPort(srv.addr)
	noAddress := func(what string, r reply) {
		t.Helper()
		if strings.Contains(r.body, port) || strings.Contains(r.body, "127.0.0.1") {
			t.Errorf("%s: %d %s: the answer shows the store's address (%s)", what, r.status, r.body, srv.addr)
		}
	}
	var opened time.Duration
	var writes, refused int
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if time.Since(frozen) > hungFor {
			break
		}
		if opened == 0 && strings.Contains(call(t, g, "GET", "/metrics", "", nil), `mlgate_breaker_state{name="redis"} 2`) {
			opened = time.Since(frozen)
		}
		r := post(t, g, "/v1/feature-views/user/rows", writeRows)
		writes++
		if r.status == 503 && strings.Contains(r.body, "online store redis is unavailable") {
			refused++
		} else {
			t.Errorf("write %d while Redis is frozen: %d %s, want 503 naming the store", writes, r.status, r.body)
		}
		noAddress("write", r)
	}
	if opened == 0 {
		t.Errorf("the breaker never opened (mlgate_breaker_state{name=\"redis\"} 2) in %s of a frozen Redis under %d callers", hungFor, hungWorkers)
	}
	for _, req := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/v1/features/online", `{"features": ["user:age"], "entities": {"user_id": ["u1"]}}`, 200, `"degraded":true`},
		// Redis has nothing to prepare for a view: creating one needs no call.
		{"PUT", "/v1/feature-views/other", `{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}], "store": "redis"}`, 201, `"store":"redis"`},
		{"DELETE", "/v1/feature-views/spare", "", 503, "online store redis is unavailable"},
	} {
		r := send(t, g, req.method, req.path, req.body)
		noAddress(req.method+" "+req.path, r)
		if r.status != req.status || !strings.Contains(r.body, req.want) {
			t.Errorf("%s %s while Redis is frozen: %d %s, want %d with %s", req.method, req.path, r.status, r.body, req.status, req.want)
		}
	}

	srv.signal(syscall.SIGCONT)
	thawed := time.Now()
	time.Sleep(faultAfter)
	cancel()
	wg.Wait()

	var frozenAnswers, degraded int
	var slowest time.Duration
	var lastDegraded time.Time
	refusedFrom := thawed // the first answer the breaker spared the wait
	for _, a := range answers {
		if end := a.start.Add(a.took); end.Before(thawed) { // answered while Redis was frozen
			frozenAnswers++
			slowest = max(slowest, a.took)
			if a.took < timeout/2 && end.Before(refusedFrom) {
				refusedFrom = end
			}
			if a.status != 200 || !a.degraded {
				t.Errorf("a prediction while Redis was frozen: %+v, want 200 degraded", a)
			}
		}
		if a.degraded {
			degraded++
			if a.start.After(lastDegraded) {
				lastDegraded = a.start
			}
		}
	}
	toWhole := max(lastDegraded.Sub(thawed), 0)
	t.Logf("Redis frozen %s under %d callers: %d predictions, the slowest %s (store timeout %s); the first answered at once by the open breaker %s after the freeze (/metrics showed it open by %s); %d of %d writes refused with 503; whole again %s after SIGCONT",
		thawed.Sub(frozen).Round(time.Millisecond), hungWorkers, frozenAnswers, slowest.Round(time.Millisecond), timeout,
		refusedFrom.Sub(frozen).Round(time.Millisecond), opened.Round(time.Millisecond), refused, writes, toWhole.Round(time.Millisecond))
	if slowest > timeout+hungMargin {
		t.Errorf("a prediction took %s while Redis was frozen, want at most the store timeout %s + %s", slowest, timeout, hungMargin)
	}
	if toWhole > maxToWhole {
		t.Errorf("answers were whole again %s after SIGCONT, want within %s", toWhole, maxToWhole)
	}
	if !slices.ContainsFunc(answers, func(a answer) bool { return a.start.After(lastDegraded) && a.status == 200 && !a.degraded }) {
		t.Error("no whole answer after SIGCONT")
	}
	if !strings.Contains(logged.String(), `"msg":"online store call failed"`) || !strings.Contains(logged.String(), srv.addr) {
		t.Errorf("the log has no failed store call with the store's error:\n%.2000s", logged.String())
	}
	if r := post(t, g, "/v1/feature-views/user/rows", writeRows); r.status != 200 {
		t.Errorf("write after SIGCONT: %d %s", r.status, r.body)
	}
}

// answer is what one request of the load got.
type answer struct {
	start    time.Time
	took     time.Duration
	status   int // 0: no answer at all
	degraded bool
}

// driverOf names the component of a store's client library in the log.
var driverOf = map[string]string{"redis": "go-redis", "cassandra": "gocql"}

func runFault(t *testing.T, cfg config.Config, store string, stop, restart func()) {
	var logged testservers.Log
	g, err := Start(t.Context(), cfg, "test", slog.New(slog.NewJSONHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	// Entries of the cache expire long before the store comes back, so the
	// degraded answers show that expired ones still serve.
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}, {"name": "income", "type": "double"}, {"name": "visits", "type": "int"}],
		"cache_ttl": "100ms", "store": "`+store+`"}`))
	const users = 20
	var rows []string
	for i := range users {
		rows = append(rows, fmt.Sprintf(`{"user_id": "u%d", "age": %d, "income": %d.5, "visits": %d}`, i, 20+i, 1000*i, i))
	}
	writeRows := `{"rows": [` + strings.Join(rows, ",") + `]}`
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(writeRows))
	registerScorer(t, g)
	predict := func(client *http.Client, body string) (int, map[string]json.RawMessage) {
		resp, err := client.Post("http://"+g.Addr+"/v1/models/scorer/predict", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, nil
		}
		return resp.StatusCode, out
	}
	// u0 is read (and cached) before the store goes.
	const u0 = `{"debug": true, "entities": {"user_id": ["u0"]}, "request": {"hour": [1], "count": [1]}}`
	if status, out := predict(http.DefaultClient, u0); status != 200 || out["degraded"] != nil {
		t.Fatalf("before the fault: %d %v", status, out)
	}

	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for w := range faultWorkers {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []answer
			for ctx.Err() == nil {
				body := fmt.Sprintf(`{"entities": {"user_id": ["u%d", "u%d"]}, "request": {"hour": [1, 2], "count": [3, 4]}}`, r.IntN(users), r.IntN(users))
				a := answer{start: time.Now()}
				var out map[string]json.RawMessage
				a.status, out = predict(client, body)
				a.degraded = string(out["degraded"]) == "true"
				mine = append(mine, a)
				time.Sleep(2 * time.Millisecond)
			}
			mu.Lock()
			answers = append(answers, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(faultBefore)
	stopped := time.Now()
	stop()
	t.Logf("%s stopped", store)

	// While the store is gone: the breaker opens, writes are refused with
	// 503, and u0 is answered from its expired cache entry.
	var opened, refused bool
	for time.Since(stopped) < faultOutage {
		m := call(t, g, "GET", "/metrics", "", nil)
		opened = opened || strings.Contains(m, `mlgate_breaker_state{name="`+store+`"} 2`)
		if !refused {
			if r := post(t, g, "/v1/feature-views/user/rows", writeRows); r.status == 503 && strings.Contains(r.body, "store "+store+" is unavailable") {
				refused = true
			} else if r.status == 200 {
				t.Errorf("a write succeeded while %s was gone", store)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !opened {
		t.Errorf("mlgate_breaker_state{name=%q} never showed 2 (open) while %s was gone", store, store)
	}
	if !refused {
		t.Errorf("writes were never refused with 503 while %s was gone", store)
	}
	status, out := predict(http.DefaultClient, u0)
	if status != 200 || string(out["degraded"]) != "true" || !strings.Contains(string(out["feature_status"]), `"user:age":"PRESENT"`) {
		t.Errorf("u0 while %s is gone: %d %s %s; want degraded, its values from the expired cache entry", store, status, out["degraded"], out["feature_status"])
	}
	if r := post(t, g, "/v1/features/online", `{"features": ["user:age"], "entities": {"user_id": ["u0"]}}`); r.status != 200 || !strings.Contains(r.body, `"degraded":true`) {
		t.Errorf("online read while %s is gone: %d %s; want it marked degraded", store, r.status, r.body)
	}
	if m := call(t, g, "GET", "/metrics", "", nil); !regexp.MustCompile(`mlgate_feature_degraded_total\{store="` + store + `"\} [1-9]`).MatchString(m) {
		t.Errorf("/metrics counts no degraded reads of %s", store)
	}

	restart()
	back := time.Now()
	t.Logf("%s back after %s", store, back.Sub(stopped).Round(time.Millisecond))
	time.Sleep(faultAfter)
	cancel()
	wg.Wait()

	var failed, degraded, whole int
	var lastDegraded time.Time
	for _, a := range answers {
		switch {
		case a.status != 200:
			failed++
		case a.degraded:
			degraded++
			if a.start.After(lastDegraded) {
				lastDegraded = a.start
			}
		default:
			whole++
		}
	}
	rate := float64(failed) / float64(len(answers))
	toWhole := max(lastDegraded.Sub(back), 0)
	t.Logf("%s: %d answers (%d whole, %d degraded, %d failed: %.2f%% errors); whole again %s after the store came back",
		store, len(answers), whole, degraded, failed, 100*rate, toWhole.Round(time.Millisecond))
	if rate >= maxErrorRate {
		t.Errorf("error rate %.2f%%, want under %.0f%%", 100*rate, 100*maxErrorRate)
	}
	if degraded == 0 {
		t.Error("no answer was marked degraded")
	}
	if toWhole > maxToWhole {
		t.Errorf("answers were whole again %s after the store came back, want within %s", toWhole, maxToWhole)
	}
	if !slices.ContainsFunc(answers, func(a answer) bool { return a.start.After(lastDegraded) && a.status == 200 }) {
		t.Error("no whole answer after the store came back")
	}

	// The driver's complaints while the store was gone are JSON log lines.
	component := `"component":"` + driverOf[store] + `"`
	if !slices.ContainsFunc(strings.Split(logged.String(), "\n"), func(line string) bool {
		return strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, component)
	}) {
		t.Errorf("the log has no warning with %s:\n%.2000s", component, logged.String())
	}

	// The store is used again: rows written now are read back.
	if r := post(t, g, "/v1/feature-views/user/rows", writeRows); r.status != 200 {
		t.Fatalf("write after %s came back: %d %s", store, r.status, r.body)
	}
	time.Sleep(150 * time.Millisecond) // past the cache TTL
	if status, out := predict(http.DefaultClient, u0); status != 200 || out["degraded"] != nil || !strings.Contains(string(out["feature_status"]), `"user:age":"PRESENT"`) {
		t.Errorf("u0 after %s came back: %d %v", store, status, out)
	}
}

// registerScorer registers the two-input model with a feature spec on the
// view user.
func registerScorer(t *testing.T, g *Gateway) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"feature_spec": {"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:hour"], "b": ["user:visits", "request:count"]},
		"defaults": {"user:age": 30, "user:income": 0.5, "user:visits": 7}}}`)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.MultiInput))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/scorer/versions", mw.FormDataContentType(), &body)
}

type reply struct {
	status int
	body   string
}

// post sends a JSON body and returns the answer whatever its status.
func post(t *testing.T, g *Gateway, path, body string) reply {
	t.Helper()
	return send(t, g, http.MethodPost, path, body)
}

// send makes a request with a JSON body, if any, and returns the answer
// whatever its status.
func send(t *testing.T, g *Gateway, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(raw)}
}

// redisServer is a redis-server of the test's own, on a port of its own.
type redisServer struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

// needRedisServer skips the test without redis-server on PATH, or, in CI,
// fails it.
func needRedisServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testservers.InCI() {
			t.Fatal("redis-server is not on PATH (deploy/redis.sh start installs it)")
		}
		t.Skip("redis-server is not on PATH: skipping; deploy/redis.sh start installs it")
	}
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	needRedisServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &redisServer{t: t, addr: addr, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !redisPing(s.addr) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s does not answer PING after 10s; log:\n%s", s.addr, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal sends sig to the server's process: SIGSTOP freezes it (it keeps
// its connections, the kernel still accepts new ones, and nothing is
// answered), SIGCONT lets it go on.
func (s *redisServer) signal(sig os.Signal) {
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Errorf("redis-server: %s: %v", sig, err)
	}
}

// stop kills the server, as a crash would, and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// proxy forwards TCP connections from its own loopback port to target; cut
// closes its listener and every connection, restore listens again on the
// same port.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

// track keeps c to close at the next cut, or closes it now when cut.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(u) {
		c.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(u, c)
		u.Close()
		close(done)
	}()
	io.Copy(c, u)
	c.Close()
	<-done
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return
	}
	p.ln.Close()
	p.ln = nil
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
