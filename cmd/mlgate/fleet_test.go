package main

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/tables"
)

// fleet runs replicas of `mlgate serve` as processes on loopback, sharing
// one PostgreSQL database (the control plane), the test Redis Cluster (the
// online store) and one inference table directory.
type fleet struct {
	t        *testing.T
	bin      string
	env      []string // what every replica is started with
	tables   string
	replicas []*replica
}

type replica struct {
	id, addr, dataDir string
	cmd               *exec.Cmd
	logs              *testservers.Log
	exited            chan struct{}
}

// newFleet starts n replicas, r1 to rn, on the database dsn (a database of
// the test's own on the shared server when empty), and waits until each is
// ready.
func newFleet(t *testing.T, n int, dsn string) *fleet {
	t.Helper()
	if dsn == "" {
		dsn = testservers.Postgres(t)
	}
	var prefix [4]byte
	crand.Read(prefix[:])
	f := &fleet{t: t, bin: buildBinary(t), tables: t.TempDir()}
	f.env = append(os.Environ(),
		"MLGATE_LOG_LEVEL=info",
		"MLGATE_CONTROL_PLANE_STORE=postgres",
		"MLGATE_CONTROL_PLANE_POSTGRES_DSN="+dsn,
		"MLGATE_ONLINE_STORE_DEFAULT=redis",
		"MLGATE_ONLINE_STORE_REDIS_CLUSTER_ADDRS="+strings.Join(testservers.RedisCluster(t), ","),
		"MLGATE_ONLINE_STORE_REDIS_KEY_PREFIX=fleet-"+hex.EncodeToString(prefix[:]),
		"MLGATE_INFERENCE_TABLES_DIR="+f.tables,
		"MLGATE_INFERENCE_TABLES_FLUSH_INTERVAL=100ms",
		"MLGATE_SERVER_DRAIN_DELAY=300ms",
	)
	for i := range n {
		f.replicas = append(f.replicas, &replica{id: fmt.Sprintf("r%d", i+1), addr: freeAddr(t), dataDir: t.TempDir()})
	}
	for i := range f.replicas {
		f.start(i)
	}
	for i := range f.replicas {
		f.waitReady(i)
	}
	return f
}

// start starts replica i (again, after a stop, on the same address and
// data directory).
func (f *fleet) start(i int) {
	f.t.Helper()
	r := f.replicas[i]
	r.cmd = exec.Command(f.bin, "serve")
	r.cmd.Env = append(slices.Clone(f.env), "MLGATE_DATA_DIR="+r.dataDir, "MLGATE_LISTEN="+r.addr, "MLGATE_CONTROL_PLANE_REPLICA_ID="+r.id)
	r.logs = &testservers.Log{}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	r.exited = make(chan struct{})
	cmd, exited := r.cmd, r.exited
	go func() { cmd.Wait(); close(exited) }()
	f.t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if f.t.Failed() {
			f.t.Logf("replica %s log:\n%s", r.id, r.logs.String())
		}
	})
}

// signal sends sig to replica i and waits for it to exit.
func (f *fleet) signal(i int, sig syscall.Signal) {
	f.t.Helper()
	r := f.replicas[i]
	if err := r.cmd.Process.Signal(sig); err != nil {
		f.t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		// A replica that does not stop says why: the Go runtime prints every
		// goroutine's stack on SIGQUIT.
		r.cmd.Process.Signal(syscall.SIGQUIT)
		<-r.exited
		f.t.Fatalf("replica %s did not exit within 10s of %v:\n%s", r.id, sig, r.logs.String())
	}
}

func (f *fleet) waitReady(i int) {
	f.t.Helper()
	r := f.replicas[i]
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, _, err := f.call(i, http.MethodGet, "/v2/health/ready", "", nil); err == nil && status == 200 {
			return
		}
		select {
		case <-r.exited:
			f.t.Fatalf("replica %s exited while starting:\n%s", r.id, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("replica %s not ready within 60s:\n%s", r.id, r.logs.String())
		}
	}
}

var fleetClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request to replica i.
func (f *fleet) call(i int, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://"+f.replicas[i].addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := fleetClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// must sends a JSON request to replica i and fails the test unless it is
// answered with a 2xx; it returns the body.
func (f *fleet) must(i int, method, path, body string) []byte {
	f.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	status, raw, err := f.call(i, method, path, ct, []byte(body))
	if err != nil || status/100 != 2 {
		f.t.Fatalf("%s %s on %s: %d %s %v", method, path, f.replicas[i].id, status, raw, err)
	}
	return raw
}

// register uploads the iris classifier as a new version of model through
// replica i and returns its number.
func (f *fleet) register(i int, model string) int {
	f.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("model", "iris.onnx")
	part.Write(modelzoo.Iris)
	w.WriteField("metadata", `{"tags": {"validation_status": "PASSED"}}`)
	w.Close()
	status, raw, err := f.call(i, http.MethodPost, "/v1/models/"+model+"/versions", w.FormDataContentType(), body.Bytes())
	if err != nil || status != 201 {
		f.t.Fatalf("register %s on %s: %d %s %v", model, f.replicas[i].id, status, raw, err)
	}
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		f.t.Fatal(err)
	}
	return v.Version
}

// until polls cond until it holds, for at most d; it returns how long that
// took.
func (f *fleet) until(what string, d time.Duration, cond func() bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			f.t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// load sends requests round robin over the replicas until stopped, as a
// load balancer would: it leaves out a replica whose readiness probe
// (/v2/health/ready, asked every 20 ms) fails, as a draining replica's does
// for server.drain_delay before it closes its listener, and retries a
// refused connection on the next replica. Any other failure counts.
type load struct {
	answered atomic.Int64
	mu       sync.Mutex
	ids      map[string]bool // the request ids answered, when the body is a /v1 predict request
	failures []failure
	stop     chan struct{}
	wg       sync.WaitGroup
}

// failure is a request that failed on a replica: an answer other than 200,
// or a transport error.
type failure struct {
	replica int
	status  int
	body    string
	err     error
}

func (f *fleet) load(workers int, path, body string) *load {
	l := &load{stop: make(chan struct{}), ids: map[string]bool{}}
	var next, seq atomic.Int64
	out := make([]atomic.Bool, len(f.replicas)) // failed its readiness probe
	l.wg.Go(func() {
		for {
			for i := range f.replicas {
				status, _, err := f.call(i, http.MethodGet, "/v2/health/ready", "", nil)
				out[i].Store(err != nil || status != 200)
			}
			select {
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				id, req := "", body
				if strings.HasPrefix(path, "/v1/") {
					id = fmt.Sprintf("load-%d", seq.Add(1))
					req = `{"request_id": "` + id + `", ` + strings.TrimPrefix(body, "{")
				}
				for try := 0; ; try++ {
					i := int(next.Add(1)) % len(f.replicas)
					if out[i].Load() && try < 10 {
						continue
					}
					status, raw, err := f.call(i, http.MethodPost, path, "application/json", []byte(req))
					if err != nil && errors.Is(err, syscall.ECONNREFUSED) && try < 10 {
						continue
					}
					if err == nil && status == 200 {
						l.answered.Add(1)
						l.mu.Lock()
						l.ids[id] = true
						l.mu.Unlock()
						break
					}
					l.mu.Lock()
					l.failures = append(l.failures, failure{replica: i, status: status, body: string(raw), err: err})
					l.mu.Unlock()
					break
				}
			}
		})
	}
	return l
}

// end stops the load and fails the test if a request failed, but for the
// transport errors of the replicas killed (requests in flight on a process
// killed with SIGKILL die with it; a client retries them).
func (l *load) end(t *testing.T, killed ...int) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	var failed []failure
	for _, fl := range l.failures {
		if fl.err == nil || !slices.Contains(killed, fl.replica) {
			failed = append(failed, fl)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed; first, on replica %d: %d %s %v", len(failed), len(l.failures)+int(l.answered.Load()), failed[0].replica+1, failed[0].status, failed[0].body, failed[0].err)
	}
}

// servedVersion asks replica i which version of model serves a request.
func (f *fleet) servedVersion(i int, model string) string {
	status, raw, err := f.call(i, http.MethodPost, "/v2/models/"+model+"/infer", "application/json", []byte(gateway.DemoRequest))
	if err != nil || status != 200 {
		return ""
	}
	var out struct {
		ModelVersion string `json:"model_version"`
	}
	json.Unmarshal(raw, &out)
	return out.ModelVersion
}

// TestFleetChangesReachEveryReplica: three replicas under round-robin load.
// A version registered through r1 and the alias moved to it through r2 are
// served by every replica, and no request fails; then 50 traffic changes
// made through r3 each reach every replica, and the delays are reported.
func TestFleetChangesReachEveryReplica(t *testing.T) {
	f := newFleet(t, 3, "")
	v1 := f.register(0, "iris")
	f.must(1, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v1))
	for i := range f.replicas {
		f.until("v1 served by "+f.replicas[i].id, 5*time.Second, func() bool { return f.servedVersion(i, "iris") == "1" })
	}
	l := f.load(4, "/v2/models/iris/infer", gateway.DemoRequest)

	v2 := f.register(0, "iris")
	moved := time.Now()
	f.must(1, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v2))
	for i := range f.replicas {
		f.until("v2 served by "+f.replicas[i].id, 5*time.Second, func() bool { return f.servedVersion(i, "iris") == "2" })
	}
	t.Logf("alias moved through r2: every replica serves version 2 after %v", time.Since(moved).Round(time.Millisecond))

	f.must(2, http.MethodPut, "/v1/endpoints/split", `{"variants": [{"name": "a", "model": "iris/1", "weight": 50}, {"name": "b", "model": "iris/2", "weight": 50}]}`)
	var delays []time.Duration
	for n := range 50 {
		a := n%99 + 1
		f.must(2, http.MethodPatch, "/v1/endpoints/split/traffic", fmt.Sprintf(`{"weights": {"a": %d, "b": %d}}`, a, 100-a))
		changed := time.Now()
		for i := range f.replicas {
			f.until(fmt.Sprintf("change %d on %s", n, f.replicas[i].id), 10*time.Second, func() bool { return f.weightOf(i, "split", "a") == a })
		}
		delays = append(delays, time.Since(changed))
	}
	l.end(t)
	slices.Sort(delays)
	t.Logf("50 traffic changes through r3, delay until every replica routes by them: p50 %v, max %v; %d requests answered meanwhile",
		delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond), l.answered.Load())
}

// weightOf returns the weight replica i routes variant of endpoint by, or -1.
func (f *fleet) weightOf(i int, endpoint, variant string) int {
	status, raw, err := f.call(i, http.MethodGet, "/v1/endpoints/"+endpoint, "", nil)
	if err != nil || status != 200 {
		return -1
	}
	var e router.Endpoint
	json.Unmarshal(raw, &e)
	for _, v := range e.Policy.Variants {
		if v.Name == variant {
			return v.Weight
		}
	}
	return -1
}

// TestFleetSurvivesPostgresRestart stops the control plane's PostgreSQL
// under load: predictions keep flowing, since no request reads it; once it
// is back, changes made through any replica reach every replica, and each
// is applied once (the endpoint's history holds exactly the changes made).
func TestFleetSurvivesPostgresRestart(t *testing.T) {
	pg := testservers.NewPrivatePostgres(t)
	f := newFleet(t, 3, pg.DSN)
	v1 := f.register(0, "iris")
	f.must(0, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v1))
	f.must(1, http.MethodPut, "/v1/endpoints/split", fmt.Sprintf(`{"variants": [{"name": "a", "model": "iris/%d", "weight": 50}, {"name": "b", "model": "iris@champion", "weight": 50}]}`, v1))
	for i := range f.replicas {
		f.until("the endpoint on "+f.replicas[i].id, 5*time.Second, func() bool { return f.weightOf(i, "split", "a") == 50 })
	}
	l := f.load(4, "/v1/endpoints/split/predict", `{"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}`)

	pg.Stop()
	before := l.answered.Load()
	time.Sleep(3 * time.Second)
	if l.answered.Load() == before {
		t.Fatal("no request answered while PostgreSQL was down")
	}
	status, raw, _ := f.call(2, http.MethodPatch, "/v1/endpoints/split/traffic", "application/json", []byte(`{"weights": {"a": 10, "b": 90}}`))
	if status/100 != 5 {
		t.Errorf("a change while PostgreSQL is down: %d %s; want a 5xx", status, raw)
	}
	// The endpoint's figures: this replica's, said to be partial.
	if status, raw, _ := f.call(0, http.MethodGet, "/v1/endpoints/split", "", nil); status != 200 || !strings.Contains(string(raw), `"partial":"this replica's figures only`) {
		t.Errorf("the endpoint while PostgreSQL is down: %d %.300s; want 200 with this replica's figures, marked partial", status, raw)
	}
	pg.Start()

	for n, i := range []int{0, 1, 2, 0, 1} {
		a := 20 + n
		// The first change after the restart may meet a pooled connection
		// that the restart closed; a client retries a 5xx.
		f.until("a change through "+f.replicas[i].id, 10*time.Second, func() bool {
			status, _, err := f.call(i, http.MethodPatch, "/v1/endpoints/split/traffic", "application/json", []byte(fmt.Sprintf(`{"weights": {"a": %d, "b": %d}}`, a, 100-a)))
			return err == nil && status == 200
		})
		for j := range f.replicas {
			f.until(fmt.Sprintf("weight %d on %s", a, f.replicas[j].id), 10*time.Second, func() bool { return f.weightOf(j, "split", "a") == a })
		}
	}
	v2 := f.register(2, "iris")
	f.must(1, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v2))
	for i := range f.replicas {
		f.until("v2 served by "+f.replicas[i].id, 10*time.Second, func() bool { return f.servedVersion(i, "iris") == "2" })
	}
	l.end(t)

	var history struct {
		Revisions []struct {
			Revision int    `json:"revision"`
			Action   string `json:"action"`
		} `json:"revisions"`
	}
	if err := json.Unmarshal(f.must(0, http.MethodGet, "/v1/endpoints/split/history", ""), &history); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for k, h := range history.Revisions {
		if h.Revision != k+1 {
			t.Errorf("history[%d] is revision %d", k, h.Revision)
		}
		actions = append(actions, h.Action)
	}
	want := []string{"create_endpoint", "set_weights", "set_weights", "set_weights", "set_weights", "set_weights"}
	if !slices.Equal(actions, want) {
		t.Errorf("history %q, want %q", actions, want)
	}
	t.Logf("%d requests answered, none failed, across the restart", l.answered.Load())
}

// registerLinear uploads the linear model (inputs x[0] to x[3]) with a
// baseline of N(0, 1) inputs through replica i.
func (f *fleet) registerLinear(i int, model string) {
	f.t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	b := drift.NewBaselineBuilder()
	for range 5000 {
		for j := range 4 {
			b.Add(fmt.Sprintf("x[%d]", j), rng.NormFloat64())
		}
	}
	baseline, err := json.Marshal(b.Build(10))
	if err != nil {
		f.t.Fatal(err)
	}
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		f.t.Fatal(err)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("metadata", `{"baseline": `+string(baseline)+`}`)
	part, _ := w.CreateFormFile("model", "linear.onnx")
	part.Write(raw)
	w.Close()
	if status, raw, err := f.call(i, http.MethodPost, "/v1/models/"+model+"/versions", w.FormDataContentType(), body.Bytes()); err != nil || status != 201 {
		f.t.Fatalf("register %s: %d %s %v", model, status, raw, err)
	}
}

// TestFleetDriftAlertsOnce: inputs shifted away from the baseline, spread
// over three replicas so that no replica alone has min_samples of them,
// raise exactly one signed webhook call, judged by the leader on the
// fleet's merged window, and one drift_detected in the audit trail.
func TestFleetDriftAlertsOnce(t *testing.T) {
	const secret = "fleet-secret"
	var (
		mu    sync.Mutex
		calls []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !drift.Verify(secret, body, r.Header.Get(drift.HeaderSignature)) {
			calls = append(calls, "bad signature")
			return
		}
		calls = append(calls, string(body))
	}))
	defer hook.Close()
	f := newFleet(t, 3, "")
	f.registerLinear(0, "linear")
	const window = 4 * time.Second
	f.must(1, http.MethodPut, "/v1/monitors/shift", fmt.Sprintf(
		`{"model": "linear", "window": "%v", "min_samples": 300, "cooldown": "1h", "thresholds": {"psi": 0.2}, "webhook": {"url": %q, "secret": %q}}`,
		window, hook.URL, secret))
	for i := range f.replicas {
		f.until("the monitor running on "+f.replicas[i].id, 10*time.Second, func() bool {
			_, raw, err := f.call(i, http.MethodGet, "/v1/monitors", "", nil)
			return err == nil && strings.Contains(string(raw), `"running"`)
		})
	}
	// All of it in one window: start just after a boundary. A machine too
	// slow to send it in half a window tries again in the next one; a
	// window that drifted meanwhile alerts, and the hour's cooldown keeps
	// any later one from alerting again, so one call is still the answer.
	rng := rand.New(rand.NewPCG(1, 2))
	for try := 1; ; try++ {
		time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 100*time.Millisecond)))
		sent := time.Now()
		for i := range f.replicas {
			for range 3 {
				rows := make([][4]float64, 50)
				for r := range rows {
					for j := range 4 {
						rows[r][j] = 3 + rng.NormFloat64()
					}
				}
				in, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": rows}})
				f.must(i, http.MethodPost, "/v1/models/linear/predict", string(in))
			}
		}
		took := time.Since(sent)
		if took <= window/2 {
			break
		}
		if try == 3 {
			t.Fatalf("sending 450 rows took %v in each of 3 tries, too long to fit one %v window", took, window)
		}
	}
	f.until("the webhook call", 3*window, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) > 0 })
	time.Sleep(window) // room for a second call, were there one
	mu.Lock()
	if len(calls) != 1 || !strings.Contains(calls[0], `"drift.detected"`) {
		t.Errorf("webhook calls: %q; want one drift.detected", calls)
	}
	mu.Unlock()
	var audit struct {
		Events []struct {
			Action string `json:"action"`
		} `json:"events"`
	}
	if err := json.Unmarshal(f.must(2, http.MethodGet, "/v1/audit", ""), &audit); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, e := range audit.Events {
		if e.Action == "drift_detected" {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d drift_detected events in the audit trail; want 1", alerts)
	}
}

// leader returns the replica whose log last says it leads, among those
// still running, or -1.
func (f *fleet) leader() int {
	for i, r := range f.replicas {
		select {
		case <-r.exited:
			continue
		default:
		}
		if strings.Contains(r.logs.String(), "msg=leading") {
			return i
		}
	}
	return -1
}

// canary returns the state and step of endpoint's canary on replica i.
func (f *fleet) canary(i int, endpoint string) (state string, step int) {
	status, raw, err := f.call(i, http.MethodGet, "/v1/endpoints/"+endpoint, "", nil)
	if err != nil || status != 200 {
		return "", -1
	}
	var e router.Endpoint
	json.Unmarshal(raw, &e)
	if e.Canary == nil {
		return "", -1
	}
	return e.Canary.State, e.Canary.Step
}

// auditActions counts the audit trail's events of endpoint by action.
func (f *fleet) auditActions(i int, endpoint string) map[string]int {
	f.t.Helper()
	var audit struct {
		Events []struct {
			Action string `json:"action"`
		} `json:"events"`
	}
	if err := json.Unmarshal(f.must(i, http.MethodGet, "/v1/audit?endpoint="+endpoint, ""), &audit); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range audit.Events {
		out[e.Action]++
	}
	return out
}

// TestFleetCanary runs canaries across three replicas under round-robin
// load. One is judged on the fleet's merged figures (min_requests more than
// a replica alone serves in a step) and promoted, although its leader is
// killed with SIGKILL halfway: another replica takes over and the audit
// trail shows exactly one promotion. Another, whose latency rule no model
// can meet, is rolled back.
func TestFleetCanary(t *testing.T) {
	f := newFleet(t, 3, "")
	v1, v2 := f.register(0, "iris"), f.register(0, "iris")
	f.must(0, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v1))
	for _, ep := range []string{"good", "slow"} {
		f.must(1, http.MethodPut, "/v1/endpoints/"+ep, fmt.Sprintf(`{"variants": [{"name": "main", "model": "iris/%d", "weight": 100}]}`, v1))
		for i := range f.replicas {
			f.until(ep+" on "+f.replicas[i].id, 5*time.Second, func() bool { return f.weightOf(i, ep, "main") == 100 })
		}
	}
	body := `{"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}`
	good, slow := f.load(2, "/v1/endpoints/good/predict", body), f.load(2, "/v1/endpoints/slow/predict", body)

	f.must(2, http.MethodPost, "/v1/endpoints/good/canary", fmt.Sprintf(
		`{"model": "iris/%d", "steps": [20, 50, 100], "interval": "1500ms", "analysis": {"min_requests": 60, "max_error_rate": 0.05}, "promote_alias": "champion"}`, v2))
	f.must(2, http.MethodPost, "/v1/endpoints/slow/canary", fmt.Sprintf(
		`{"model": "iris/%d", "steps": [50, 100], "interval": "1s", "analysis": {"min_requests": 20, "max_p99_latency_ms": 0.0001}}`, v2))

	f.until("the slow canary rolled back", 30*time.Second, func() bool { s, _ := f.canary(0, "slow"); return s == "rolled_back" })
	f.until("the good canary at its second step", 30*time.Second, func() bool { _, step := f.canary(1, "good"); return step >= 1 })
	old := f.leader()
	if old < 0 {
		t.Fatal("no replica says it leads")
	}
	f.signal(old, syscall.SIGKILL)
	killed := time.Now()
	next := f.until("another leader", 10*time.Second, func() bool { return f.leader() >= 0 })
	t.Logf("leader %s killed; %s leads after %v", f.replicas[old].id, f.replicas[f.leader()].id, next.Round(time.Millisecond))
	if next > 5*time.Second {
		t.Errorf("a new leader after %v; want within 5s", next)
	}
	alive := (old + 1) % len(f.replicas)
	f.until("the good canary promoted", 30*time.Second, func() bool { s, _ := f.canary(alive, "good"); return s == "promoted" })
	t.Logf("promoted %v after the kill", time.Since(killed).Round(time.Millisecond))
	good.end(t, old)
	slow.end(t, old)

	// The audit row follows the change it records by a moment.
	f.until("the promotion audited", 5*time.Second, func() bool { return f.auditActions(alive, "good")["canary_promote"] > 0 })
	if got := f.auditActions(alive, "good"); got["canary_promote"] != 1 {
		t.Errorf("audit trail of good: %v; want exactly one canary_promote; history: %s", got, f.must(alive, http.MethodGet, "/v1/endpoints/good/history", ""))
	}
	f.until("the rollback audited", 5*time.Second, func() bool { return f.auditActions(alive, "slow")["canary_rollback"] > 0 })
	if got := f.auditActions(alive, "slow"); got["canary_rollback"] != 1 || got["canary_promote"] != 0 {
		t.Errorf("audit trail of slow: %v; want one canary_rollback and no promotion", got)
	}
	for i := range f.replicas {
		if i != old {
			f.until("champion moved to the canary's version on "+f.replicas[i].id, 5*time.Second, func() bool { return f.servedVersion(i, "iris") == fmt.Sprint(v2) })
		}
	}
}

// TestFleetSIGTERMLosesNoRow stops one replica with SIGTERM under
// round-robin load: the others keep answering (a refused connection is
// retried on the next replica), and once the fleet has stopped, the shared
// table directory holds one row per request answered, over the fleet.
func TestFleetSIGTERMLosesNoRow(t *testing.T) {
	f := newFleet(t, 3, "")
	v1 := f.register(0, "iris")
	f.must(0, http.MethodPut, "/v1/models/iris/aliases/champion", fmt.Sprintf(`{"version": %d}`, v1))
	for i := range f.replicas {
		f.until("v1 served by "+f.replicas[i].id, 5*time.Second, func() bool { return f.servedVersion(i, "iris") == "1" })
	}
	l := f.load(4, "/v1/models/iris/predict", `{"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}`)
	time.Sleep(time.Second)
	f.signal(1, syscall.SIGTERM)
	stopped := l.answered.Load()
	time.Sleep(time.Second)
	if l.answered.Load() == stopped {
		t.Fatal("no request answered after r2 stopped")
	}
	l.end(t)
	f.signal(0, syscall.SIGTERM)
	f.signal(2, syscall.SIGTERM)
	rows := map[string]int{}
	if err := tables.Dir(f.tables).ReadRows(t.Context(), tables.Filter{}, func(r tables.Row) error {
		if strings.HasPrefix(r.RequestID, "load-") {
			rows[r.RequestID]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range l.ids {
		if rows[id] != 1 {
			t.Errorf("request %s answered, and in the tables %d times", id, rows[id])
		}
	}
	for id, n := range rows {
		if !l.ids[id] {
			t.Errorf("request %s not answered, and in the tables %d times", id, n)
		}
	}
	if t.Failed() {
		out, _ := exec.Command("find", f.tables, "-ls").CombinedOutput()
		t.Logf("table directory:\n%s", out)
	}
	t.Logf("%d requests answered by the fleet, r2 stopped halfway; %d rows", len(l.ids), len(rows))
}
