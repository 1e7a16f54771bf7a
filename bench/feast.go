package main

// The feast scenarios: POST /v1/features/online over Feast's Redis layout
// (a view of store feast-redis) against Feast's own Python feature server
// (`feast serve`, POST /get-online-features) on the same Redis and data.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/config"
)

// feastCase is one feast scenario.
type feastCase struct {
	name      string
	view      string // the Feast feature view, and mlgate's view of it
	features  int    // f0, f1...
	entities  int    // distinct drivers per request
	feastType string // of the features in Feast: float32 or float64
	typ       string // mlgate's type of them: float or double
}

var (
	feast1x10   = feastCase{name: "feast-1x10", view: "feast10", features: 10, entities: 1, feastType: "float32", typ: "float"}
	feast100x50 = feastCase{name: "feast-100x50", view: "feast50", features: 50, entities: 100, feastType: "float64", typ: "double"}
)

// The goal (issue 14): mlgate ≥ 10 × Feast's throughput, at a lower p99.
const feastRatioGoal = 10

// feastValue is feature j of driver u as feast_bench.py writes it: a
// multiple of 1/4 in [-8, 7.75], exact in float32.
func feastValue(u, j int) float64 { return float64((u*7+j*13)%64-32) / 4 }

// feastPython returns the Python with feast[redis]: TEST_FEAST_PYTHON, or
// .cache/feastenv/bin/python (make feast) when it exists. Without one the
// error wraps errSkip unless in CI.
func feastPython() (string, error) {
	py := strings.TrimSpace(os.Getenv("TEST_FEAST_PYTHON"))
	if py == "" {
		if _, err := os.Stat(".cache/feastenv/bin/python"); err == nil {
			py = ".cache/feastenv/bin/python"
		}
	}
	var err error
	if py == "" {
		err = errors.New("no Python with feast[redis]: the feast scenarios need one; run `make feast`, or set TEST_FEAST_PYTHON=.cache/feastenv/bin/python")
	} else if _, serr := os.Stat(filepath.Join(filepath.Dir(py), "feast")); serr != nil {
		err = fmt.Errorf("TEST_FEAST_PYTHON=%s has no feast command beside it: %w", py, serr)
	}
	if err != nil {
		if !inCI() {
			err = fmt.Errorf("%w: %w", errSkip, err)
		}
		return "", err
	}
	return filepath.Abs(py)
}

// startFeast has Feast apply and materialize fc's view (cfg.users drivers)
// into the Redis of TEST_REDIS_ADDR under a project of the run's own, starts
// `feast serve` on it and mlgate with a view of store feast-redis over the
// same project, and checks that both answer the same values.
func startFeast(cfg options, fc feastCase) (sc *scenario, err error) {
	py, err := feastPython()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	addr, rdb, err := benchRedis(ctx)
	if err != nil {
		return nil, err
	}
	project := fmt.Sprintf("mlgate_bench_%08x", rand.Uint32())
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	closers = append(closers, func() {
		// Feast's keys end with the project's name.
		if err := deleteKeys(ctx, rdb, "*"+project); err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete Feast's keys of project %s from Redis: %v\n", project, err)
		}
		rdb.Close()
	})
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	dir, err := os.MkdirTemp("", "mlgate-bench-feast-")
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { os.RemoveAll(dir) })
	started := time.Now()
	script, err := filepath.Abs("bench/testdata/feast_bench.py")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("run the benchmark from the repository's root: %w", err)
	}
	setup := exec.Command(py, script, "setup", dir, addr, project, fc.view, strconv.Itoa(cfg.users), strconv.Itoa(fc.features), fc.feastType)
	if out, err := setup.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("feast_bench.py setup: %w\n%s", err, out)
	}
	setupTook := time.Since(started)

	feastSrv, pid, err := startFeastServer(py, dir)
	if err != nil {
		return nil, err
	}
	closers = append(closers, feastSrv.close)

	gateway, err := startGateway(func(c *config.Config) {
		c.OnlineStore.Redis.Addr, c.OnlineStore.Redis.KeyPrefix = addr, "mlgate-bench-"+project
	})
	if err != nil {
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	closers = append(closers, gateway.close)
	var view bytes.Buffer
	fmt.Fprintf(&view, `{"entities": ["driver_id"], "store": "feast-redis", "cache_ttl": "0s", "feast": {"project": %q, "entity_types": ["int64"]}, "features": [`, project)
	for j := range fc.features {
		if j > 0 {
			view.WriteString(", ")
		}
		fmt.Fprintf(&view, `{"name": "f%d", "type": %q}`, j, fc.typ)
	}
	view.WriteString("]}")
	if err := call(http.MethodPut, "http://"+gateway.addr+"/v1/feature-views/"+fc.view, "application/json", &view); err != nil {
		return nil, fmt.Errorf("set up mlgate's view through its API: %w", err)
	}

	bodies := feastBodies(fc, cfg.users)
	feastLoad := load{path: "/get-online-features", bodies: bodies, warmup: cfg.warmup, measure: cfg.duration}
	if err := checkFeastAnswers(gateway.addr, feastSrv.addr, fc, bodies); err != nil {
		return nil, err
	}
	server, err := redisInfo(ctx, rdb, "server")
	if err != nil {
		return nil, err
	}
	redis := redisCPU(rdb)
	side := func() time.Duration {
		r, f := redis(), processTreeCPU("/proc", pid)
		if r < 0 || f < 0 {
			return -1
		}
		return r + f
	}
	feastLoad.sideCPU = side

	sc = &scenario{
		name:    fc.name,
		heading: fmt.Sprintf("%s: POST /v1/features/online, %d entit%s × %d features over Feast's Redis layout, against `feast serve`", fc.name, fc.entities, plural(fc.entities, "y", "ies"), fc.features),
		bullets: []string{
			fmt.Sprintf("Redis: %s at %s (TEST_REDIS_ADDR), standalone; Feast's keys end with the run's project %s and are removed afterwards", server["redis_version"], addr, project),
			fmt.Sprintf("Feast: %s; feature view %s (entity driver_id, int64; %d %s features f0…f%d; TTL 7 days) over a Parquet FileSource of %d drivers, `feast apply`d and `feast materialize`d into that Redis by bench/testdata/feast_bench.py (%s)",
				feastVersion(py), fc.view, fc.features, fc.feastType, fc.features-1, cfg.users, setupTook.Round(time.Millisecond)),
			fmt.Sprintf("Feast's server (**feast**, the reference): `feast serve -h 127.0.0.1 -p PORT -w %d --no-access-log --max-requests 0 -r 3600` in the repo: gunicorn with %d uvicorn worker processes (one per CPU; Feast's default is 1), no access log, no worker recycling (Feast's default recycles each worker every 1000 requests), the registry refreshed hourly", feastWorkers(), feastWorkers()),
			fmt.Sprintf("mlgate: view %s of store feast-redis (feast.project %s, entity_types [int64], %d %s features, cache_ttl 0: no cache), created through PUT /v1/feature-views/%s; online_store.redis at the same Redis", fc.view, project, fc.features, fc.typ, fc.view),
			fmt.Sprintf("Requests: the same body to both, `{\"features\": [\"%s:f0\", …], \"entities\": {\"driver_id\": [...]}}` with %s each, the %d drivers asked for in turn; mlgate: POST /v1/features/online, Feast: POST /get-online-features. Both answered the same values (and the ones written) for the first 20 requests and the last before the load", fc.view, feastIDsEach(fc.entities), cfg.users),
		},
		targets:  []*target{{name: "feast", srv: feastSrv, load: &feastLoad}, {name: "mlgate", srv: gateway}},
		load:     load{path: "/v1/features/online", bodies: bodies, warmup: cfg.warmup, measure: cfg.duration, sideCPU: side},
		close:    closeAll,
		sideName: "Redis+Feast",
		sideNote: "The Redis+Feast CPU column is Redis's CPU (from its INFO) plus that of `feast serve`'s processes (its gunicorn master and workers, from /proc), not other load; mlgate runs in the benchmark's process, so its CPU/request includes the load generator's, while feast's CPU/request is the generator's alone and its server's CPU is in that column: compare feast's CPU/request plus its Redis+Feast column with mlgate's.",
	}
	sc.phases = []*phase{{title: fmt.Sprintf("Closed loop, %d workers", cfg.concurrency), key: "closed", workers: cfg.concurrency, minRatio: feastRatioGoal, lowerP99: true}}
	sc.after = func() error {
		sc.notes = append(sc.notes, feastCPUNote(sc.phases[0]))
		return nil
	}
	return sc, nil
}

// feastCPUNote bounds the ratio of the servers' own CPU per request, what
// bounds each one's throughput on CPUs of its own. Feast's is its server's
// and Redis's (the side column in its rounds). mlgate's lies between its
// process's CPU/request less the generator's and all of it, plus Redis's;
// the generator's is estimated from feast's rounds, where the benchmark's
// process is the generator alone (and an idle mlgate): the bodies are the
// same, but at feast's low rates the process's fixed costs weigh more on each
// request, so the estimate is high and the upper bound generous.
func feastCPUNote(p *phase) string {
	f, m := summarise(p.runs[0]), summarise(p.runs[1])
	gen := f.cpu
	feastServer := f.sideCPU
	hi := m.cpu + m.sideCPU
	lo := max(m.cpu-gen, 0) + m.sideCPU
	if feastServer <= 0 || lo <= 0 {
		return "Servers' own CPU per request: n/a (a figure was missing)."
	}
	return fmt.Sprintf("Servers' own CPU per request (Redis's included for both): feast serve + Redis %s; mlgate + Redis between %s (less the generator's, estimated as the benchmark process's CPU/request in feast's rounds, %s) and %s (with all of it): mlgate needs **%.1f× to %.1f×** less CPU per request, the throughput ratio to expect with the servers on CPUs of their own and the machine otherwise idle. (For information; the goal is on the measured throughput.)",
		fmtLatency(feastServer), fmtLatency(lo), fmtLatency(gen), fmtLatency(hi), float64(feastServer)/float64(hi), float64(feastServer)/float64(lo))
}

func feastIDsEach(n int) string {
	if n == 1 {
		return "1 driver id"
	}
	return fmt.Sprintf("%d distinct driver ids", n)
}

// feastWorkers is the worker processes of `feast serve`: one per CPU.
func feastWorkers() int { return runtime.NumCPU() }

// feastBodies returns the requests: one per driver for one entity a
// request, otherwise 1000 requests of consecutive drivers (wrapping around),
// so that the drivers are asked for in turn. Drivers are numbered from 1.
func feastBodies(fc feastCase, users int) [][]byte {
	n := users
	if fc.entities > 1 {
		n = 1000
	}
	head := []byte(`{"features":[`)
	for j := range fc.features {
		if j > 0 {
			head = append(head, ',')
		}
		head = strconv.AppendQuote(head, fc.view+":f"+strconv.Itoa(j))
	}
	head = append(head, `],"entities":{"driver_id":[`...)
	bodies := make([][]byte, n)
	for i := range bodies {
		b := append([]byte(nil), head...)
		for k := range fc.entities {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64((i*fc.entities+k)%users+1), 10)
		}
		bodies[i] = append(b, "]}}"...)
	}
	return bodies
}

// checkFeastAnswers sends some of the bodies (the first 20 and the last) to
// both and checks that each answers, for every driver and feature, the value
// feast_bench.py wrote, with status PRESENT.
func checkFeastAnswers(mlgateAddr, feastAddr string, fc feastCase, bodies [][]byte) error {
	some := append(bodies[:min(20, len(bodies)):min(20, len(bodies))], bodies[len(bodies)-1])
	for _, body := range some {
		var req struct {
			Entities struct {
				DriverID []int `json:"driver_id"`
			} `json:"entities"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return err
		}
		ids := req.Entities.DriverID
		check := func(who string, i, j int, v any, status string) error {
			f, ok := v.(float64)
			if !ok || f != feastValue(ids[i], j) || status != "PRESENT" {
				return fmt.Errorf("%s answers driver %d f%d = %v (%s), want %v (PRESENT)", who, ids[i], j, v, status, feastValue(ids[i], j))
			}
			return nil
		}

		answer, err := post(mlgateAddr, "/v1/features/online", body)
		if err != nil {
			return fmt.Errorf("mlgate: %w", err)
		}
		var m struct {
			Features []string `json:"features"`
			Rows     []struct {
				Values   []any    `json:"values"`
				Statuses []string `json:"statuses"`
			} `json:"rows"`
		}
		if err := json.Unmarshal(answer, &m); err != nil {
			return fmt.Errorf("mlgate: %w: %s", err, answer)
		}
		if len(m.Rows) != len(ids) {
			return fmt.Errorf("mlgate answers %d rows for %d drivers: %.300s", len(m.Rows), len(ids), answer)
		}
		for i, row := range m.Rows {
			if len(row.Values) != fc.features || len(row.Statuses) != fc.features {
				return fmt.Errorf("mlgate answers %d values for %d features: %.300s", len(row.Values), fc.features, answer)
			}
			for j := range fc.features {
				if err := check("mlgate", i, j, row.Values[j], row.Statuses[j]); err != nil {
					return err
				}
			}
		}

		answer, err = post(feastAddr, "/get-online-features", body)
		if err != nil {
			return fmt.Errorf("feast serve: %w", err)
		}
		// Feast answers a column per feature (and the entity's), in an
		// order of its own, named by metadata.feature_names.
		var f struct {
			Metadata struct {
				FeatureNames []string `json:"feature_names"`
			} `json:"metadata"`
			Results []struct {
				Values   []any    `json:"values"`
				Statuses []string `json:"statuses"`
			} `json:"results"`
		}
		if err := json.Unmarshal(answer, &f); err != nil {
			return fmt.Errorf("feast serve: %w: %.300s", err, answer)
		}
		if len(f.Results) != len(f.Metadata.FeatureNames) {
			return fmt.Errorf("feast serve answers %d columns for %d names", len(f.Results), len(f.Metadata.FeatureNames))
		}
		seen := 0
		for c, name := range f.Metadata.FeatureNames {
			if name == "driver_id" {
				continue
			}
			j, err := strconv.Atoi(strings.TrimPrefix(name, "f"))
			if err != nil || !strings.HasPrefix(name, "f") || j >= fc.features {
				return fmt.Errorf("feast serve answers a feature %q", name)
			}
			col := f.Results[c]
			if len(col.Values) != len(ids) || len(col.Statuses) != len(ids) {
				return fmt.Errorf("feast serve answers %d values of %s for %d drivers", len(col.Values), name, len(ids))
			}
			for i := range ids {
				if err := check("feast serve", i, j, col.Values[i], col.Statuses[i]); err != nil {
					return err
				}
			}
			seen++
		}
		if seen != fc.features {
			return fmt.Errorf("feast serve answers %d features of %d", seen, fc.features)
		}
	}
	return nil
}

// startFeastServer starts `feast serve` in the repo dir on a free port, in a
// process group of its own (gunicorn forks its workers), and waits until it
// answers /health. It returns the server and the pid of its master.
func startFeastServer(py, dir string) (*server, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(dir, "feast-serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command(filepath.Join(filepath.Dir(py), "feast"), "serve", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-w", strconv.Itoa(feastWorkers()), "--no-access-log", "--max-requests", "0", "-r", "3600")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	// Its own group, so that stop reaches the workers too; Pdeathsig stops
	// it (and gunicorn its workers) should the benchmark die without stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, fmt.Errorf("feast serve: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	pid := cmd.Process.Pid
	stop := func() {
		// The group is the one this process started: feast serve and its workers.
		syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			logf.Close()
			out, _ := os.ReadFile(logPath)
			return nil, 0, fmt.Errorf("feast serve exited: %s", tail(out, 2000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			out, _ := os.ReadFile(logPath)
			return nil, 0, fmt.Errorf("feast serve did not answer /health within 60s: %s", tail(out, 2000))
		}
	}
	return &server{addr: addr, close: stop}, pid, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// feastVersion returns "Feast VERSION, Python VERSION" of py.
func feastVersion(py string) string {
	out, err := exec.Command(py, "-c", "import feast, sys; print(feast.__version__, sys.version.split()[0])").Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 {
		return "Feast (version unknown)"
	}
	return "Feast " + f[0] + " (Python " + f[1] + ")"
}
