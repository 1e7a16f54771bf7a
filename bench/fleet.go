package main

// The fleet scenario: what running mlgate as a fleet costs per request.
// Two fleets in this process, each with a PostgreSQL control plane
// (control_plane.store postgres) in a database of the run's own and one
// inference table directory that its replicas share: "one-replica" (the
// reference) has one replica, "three-replicas" three, each with its own
// replica id, data directory and listen address. Both are set up alike
// through the API (the modelzoo's linear model with a drift baseline, the
// churn endpoint, a drift monitor on the model) and sent the same load,
// POST /v1/endpoints/churn/predict with the units in turn, which three-
// replicas spreads round robin over its replicas. So each request of either
// fleet does the fleet's per-request work (the endpoint's traffic figures,
// the monitor's window, the table row) and each replica its periodic work
// (the figures and windows published each second, the change feed, the
// leader election).
//
// Only the target of a round runs during it: each round starts its fleet's
// replicas (outside the measured period) and shuts them down after it, so
// that an idle fleet's periodic work is never charged to the other. After
// the load, every request a fleet answered must be a row of its table.
//
// With -fleet-store embedded it is a control instead: the same two targets
// with the embedded control plane, so that the three are independent
// gateways in one process, each set up alike and with a table of its own.
// What three-replicas costs more then is having three servers in one
// process, not the fleet's coordination.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/tables"
)

const (
	// fleetGoal: three replicas' CPU per request ≤ fleetGoal × one
	// replica's (issue 12).
	fleetGoal = 1.05
	// fleetMonitor is the drift monitor both fleets run on the model.
	fleetMonitor     = "shift"
	fleetMonitorSpec = `{"model": "linear", "window": "1m", "min_samples": 100, "thresholds": {"psi": 0.2}}`
	// fleetReady bounds how long a replica may take to see what another
	// replica set up (the change feed).
	fleetReady = 30 * time.Second
)

// fleet is one target: replicas of one control plane database and one
// table directory, started for each round and stopped after it.
type fleet struct {
	name    string
	store   string // control_plane.store: postgres, or embedded for the control
	dsn     string
	redis   string // the online store's address (a fleet needs a shared one; the load reads no feature)
	prefix  string // its key prefix
	drop    func() error
	dir     string   // the run's directory of this fleet: tables/ and a data directory per replica
	ids     []string // replica ids
	running []*server
	// answered counts the predict requests the fleet answered 200 outside
	// the load generator (the checks); the generator's are in the phases'
	// results.
	answered int
	// dropped and failed sum the writer's counters at each shutdown.
	dropped, failed int64
}

func (f *fleet) postgres() bool { return f.store == "postgres" }

// tables returns the inference tables' directories: the fleet's shared
// one, or (embedded) each replica's own.
func (f *fleet) tables() []string {
	if f.postgres() {
		return []string{filepath.Join(f.dir, "tables")}
	}
	dirs := make([]string, len(f.ids))
	for i, id := range f.ids {
		dirs[i] = filepath.Join(f.dir, id, "inference")
	}
	return dirs
}

// start starts the replicas and returns a server whose addresses are
// theirs, for the load generator.
func (f *fleet) start() (*server, error) {
	for _, id := range f.ids {
		s, err := startGatewayIn(filepath.Join(f.dir, id), func(c *config.Config) {
			c.Tables.Enabled = true
			if !f.postgres() {
				return
			}
			c.ControlPlane.Store = "postgres"
			c.ControlPlane.Postgres.DSN = f.dsn
			c.ControlPlane.ReplicaID = id
			c.OnlineStore.Default = "redis"
			c.OnlineStore.Redis.Addr, c.OnlineStore.Redis.KeyPrefix = f.redis, f.prefix
			c.Tables.Dir = f.tables()[0]
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: start replica %s: %w", f.name, id, err), f.stop())
		}
		f.running = append(f.running, s)
	}
	srv := &server{addr: f.running[0].addr}
	for _, s := range f.running {
		srv.replicas = append(srv.replicas, s.addr)
	}
	return srv, nil
}

// stop shuts the running replicas down, which writes every row they
// accepted, and adds up their writers' losses.
func (f *fleet) stop() error {
	var errs []error
	for i, s := range f.running {
		if err := s.shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("%s: shut replica %s down: %w", f.name, f.ids[i], err))
		}
		st := s.gateway.Tables.Stats()
		f.dropped += st.Dropped
		f.failed += st.Failed
	}
	f.running = nil
	return errors.Join(errs...)
}

// check sends body to path on every running replica until each answers
// the model's output, for at most fleetReady.
func (f *fleet) check(path string, body []byte) error {
	for i, s := range f.running {
		deadline := time.Now().Add(fleetReady)
		for {
			_, err := checkPredictAnswer(s.addr, path, body)
			if err == nil {
				f.answered++
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: replica %s: %w", f.name, f.ids[i], err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// setUp registers the model, creates the endpoint and the monitor through
// the first replica (embedded: through each), waits until every replica
// serves the endpoint and runs the monitor, and sends every endpoint body
// once, round robin. It returns the endpoint's bodies and how the units
// split between the variants.
func (f *fleet) setUp(metadata string) ([][]byte, string, error) {
	through := f.running[:1]
	if !f.postgres() {
		through = f.running
	}
	for _, s := range through {
		err := register(s.addr, modelName, modelzoo.Path(modelzoo.Linear), metadata)
		if err == nil {
			err = call(http.MethodPut, "http://"+s.addr+"/v1/endpoints/"+endpointName, "application/json", strings.NewReader(endpointPolicy))
		}
		if err == nil {
			err = call(http.MethodPut, "http://"+s.addr+"/v1/monitors/"+fleetMonitor, "application/json", strings.NewReader(fleetMonitorSpec))
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: set up through the API: %w", f.name, err)
		}
	}
	bodies := make([][]byte, endpointUnits)
	for i := range bodies {
		bodies[i] = []byte(`{"unit":"u` + fmt.Sprint(i) + `",` + rawInputs + "}")
	}
	if err := f.check(endpointPath, bodies[0]); err != nil {
		return nil, "", err
	}
	for i, s := range f.running {
		if err := waitMonitor(s.addr); err != nil {
			return nil, "", fmt.Errorf("%s: replica %s: %w", f.name, f.ids[i], err)
		}
	}
	variants := map[string]int{}
	for i, body := range bodies {
		variant, err := checkPredictAnswer(f.running[i%len(f.running)].addr, endpointPath, body)
		if err != nil {
			return nil, "", fmt.Errorf("%s: endpoint-predict answers wrongly, not benchmarking it: %w", f.name, err)
		}
		f.answered++
		variants[variant]++
	}
	if len(variants) != 2 {
		return nil, "", fmt.Errorf("%s: %d units went to %v, want both variants", f.name, endpointUnits, variants)
	}
	return bodies, fmt.Sprintf("control for %d and treatment for %d of the %d units", variants["control"], variants["treatment"], endpointUnits), nil
}

// waitMonitor waits until GET /v1/monitors on addr lists the monitor as
// running.
func waitMonitor(addr string) error {
	deadline := time.Now().Add(fleetReady)
	for {
		resp, err := http.Get("http://" + addr + "/v1/monitors")
		if err == nil {
			var listing struct {
				Monitors []struct {
					Name   string `json:"name"`
					Status string `json:"status"`
				} `json:"monitors"`
			}
			err = json.NewDecoder(resp.Body).Decode(&listing)
			resp.Body.Close()
			for _, m := range listing.Monitors {
				if m.Name == fleetMonitor && m.Status == "running" {
					return nil
				}
			}
			if err == nil {
				err = fmt.Errorf("monitor %s not running: %+v", fleetMonitor, listing.Monitors)
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baselineMetadata is the model's registration metadata: a drift baseline
// of its four inputs, standard normal, so that the monitor has something to
// compare with (the benchmark's inputs drift from it; the monitor alerts
// once, then its cooldown holds).
func baselineMetadata() (string, error) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := drift.NewBaselineBuilder()
	for range 5000 {
		for j := range 4 {
			if err := b.Add(fmt.Sprintf("x[%d]", j), rng.NormFloat64()); err != nil {
				return "", err
			}
		}
	}
	baseline, err := json.Marshal(b.Build(10))
	if err != nil {
		return "", err
	}
	return `{"baseline": ` + string(baseline) + `}`, nil
}

func startFleet(cfg options) (*scenario, error) {
	ctx := context.Background()
	fleetMode := cfg.fleetStore == "postgres"
	var admin, redis string
	var err error
	if fleetMode {
		if admin, err = postgresAdmin(ctx); err != nil {
			return nil, err
		}
		if redis, err = redisAddr(); err != nil {
			if !inCI() {
				err = fmt.Errorf("%w: %w", errSkip, err)
			}
			return nil, err
		}
	}
	prefix := "mlgate-bench-fleet-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	metadata, err := baselineMetadata()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mlgate-bench-fleet-")
	if err != nil {
		return nil, err
	}
	one := &fleet{name: "one-replica", store: cfg.fleetStore, dir: filepath.Join(dir, "one"), ids: []string{"one-r1"}, redis: redis, prefix: prefix + "-one"}
	three := &fleet{name: "three-replicas", store: cfg.fleetStore, dir: filepath.Join(dir, "three"), ids: []string{"three-r1", "three-r2", "three-r3"}, redis: redis, prefix: prefix + "-three"}
	fleets := []*fleet{one, three}
	closeAll := func() {
		for _, f := range fleets {
			if err := f.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: fleet:", err)
			}
			if f.drop != nil {
				if err := f.drop(); err != nil {
					fmt.Fprintln(os.Stderr, "bench: fleet:", err)
				}
			}
		}
		os.RemoveAll(dir)
	}
	var bodies [][]byte
	var splits []string
	for _, f := range fleets {
		if fleetMode {
			if f.dsn, f.drop, err = createDatabase(ctx, admin, "bench_fleet"); err != nil {
				closeAll()
				return nil, err
			}
		}
		if _, err = f.start(); err != nil {
			closeAll()
			return nil, err
		}
		var split string
		bodies, split, err = f.setUp(metadata)
		if err == nil {
			err = f.stop()
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		splits = append(splits, f.name+": "+split)
	}
	var pgCPU func() time.Duration
	if fleetMode {
		if pgCPU, err = postgresCPU(ctx, admin); err != nil {
			closeAll()
			return nil, fmt.Errorf("find the PostgreSQL server's processes: %w", err)
		}
	}
	d := config.Defaults().Tables
	tablesOn := fmt.Sprintf("the tables on with the default settings (flush_interval %s, queue_size %d, spill %t)", time.Duration(d.FlushInterval), d.QueueSize, d.Spill)
	heading := fmt.Sprintf("fleet: three replicas against one, %d workers and %.0f requests/s", cfg.concurrency, cfg.fleetRate)
	targets := "Targets: two fleets of mlgate replicas in this process (`gateway.Start` each, as `mlgate serve` wires it), each replica with `control_plane.store: postgres`, its own `control_plane.replica_id`, data directory and listen address; **one-replica** has one replica, **three-replicas** three. " +
		"Each fleet has a database of the run's own (`CREATE DATABASE bench_fleet_<random>` on TEST_POSTGRES_DSN's server " + redactDSN(admin) + ", dropped at the end) and one `inference_tables.dir` that its replicas share, and `online_store.default: redis` (TEST_REDIS_ADDR " + redis + ", a key prefix of each fleet's own: a fleet needs a shared online store; these requests read no feature); " + tablesOn
	through := "each fleet's first replica"
	if !fleetMode {
		heading = fmt.Sprintf("fleet control (-fleet-store embedded): three independent gateways against one, %d workers and %.0f requests/s", cfg.concurrency, cfg.fleetRate)
		targets = "Targets (a control, not a fleet): the same two targets with the embedded control plane (`control_plane.store: embedded`, the default): **one-replica** is one gateway, **three-replicas** three independent gateways in this process, each with its own data directory, listen address and inference table; " + tablesOn +
			". What three-replicas costs more here is three servers in one process, not the fleet's coordination"
		through = "each gateway"
	}
	sc := &scenario{
		name:    "fleet",
		heading: heading,
		bullets: []string{
			targets,
			"Set up alike through the API of " + through + ": `linear.onnx` registered as model `linear` with a drift baseline of its 4 inputs (standard normal), endpoint `PUT /v1/endpoints/" + endpointName + "` `" + endpointPolicy + "`, drift monitor `PUT /v1/monitors/" + fleetMonitor + "` `" + fleetMonitorSpec + "` (the requests' inputs drift from the baseline: the monitor judges each window, one alert, then the 1h cooldown; in a fleet, the leader judges the replicas' merged windows)",
			"Requests: `POST " + endpointPath + "` with `{\"unit\": \"u<i>\", " + rawInputs + "}`, the units u0…u9999 in turn; three-replicas gets them round robin over its replicas (each closed-loop worker, and the open loop, send to the replicas in turn, keeping connections to each), so both fleets serve the same total load",
			"Checked before the load: every replica answered `{\"y\": [[4, 10]]}` from linear version 1 and listed the monitor running; every unit answered once (round robin), " + strings.Join(splits, "; "),
			"Each round starts its fleet's replicas before the warm-up and shuts them down after the measured period (both outside it), so only the round's fleet runs while it is measured; the other's periodic work (figures, windows, change feed, election) is not charged to it",
			"In one process, the replicas share one Go runtime (scheduler, garbage collector) and ONNX Runtime's environment and thread pools; each has its own sessions (1 intra-op, 1 inter-op thread), HTTP server, database pool, table writer and periodic loops. Separate processes would each add a runtime's fixed costs",
		},
		targets:  []*target{{name: one.name}, {name: three.name}},
		load:     load{path: endpointPath, bodies: bodies, warmup: cfg.warmup, measure: cfg.duration, sideCPU: pgCPU},
		sideName: "PostgreSQL",
		sideNote: "PostgreSQL's CPU (its postmaster and server processes, from /proc) is its own column, not other load; it is only the fleets' when the server serves the benchmark alone (as `make bench`'s does).",
		phases: []*phase{
			{title: fmt.Sprintf("Closed loop, %d workers", cfg.concurrency), key: "closed", workers: cfg.concurrency, maxCPURatio: fleetGoal},
			{title: fmt.Sprintf("Open loop at %.0f requests/s", cfg.fleetRate), key: "open", rate: cfg.fleetRate, maxConns: 512, maxCPURatio: fleetGoal},
		},
		close: closeAll,
	}
	fleetOf := func(t *target) *fleet {
		if t.name == one.name {
			return one
		}
		return three
	}
	sc.beforeRound = func(t *target) error {
		f := fleetOf(t)
		srv, err := f.start()
		if err != nil {
			return err
		}
		t.srv = srv
		return f.check(endpointPath, bodies[0])
	}
	sc.afterRound = func(t *target) error { return fleetOf(t).stop() }
	sc.after = func() error {
		var errs []error
		for i, f := range fleets {
			answered := f.answered
			for _, p := range sc.phases {
				for _, r := range p.runs[i] {
					answered += r.answered
				}
			}
			if err := checkFleetRows(sc, f, answered); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return sc, nil
}

// checkFleetRows counts the rows of f's inference table and the replicas
// that wrote them, adds what it found to the report's notes, and fails
// unless every answered request is one row and no writer dropped or failed
// a row.
func checkFleetRows(sc *scenario, f *fleet, answered int) error {
	var rows int64
	replicas := map[string]bool{}
	for _, dir := range f.tables() {
		files, err := tables.List(dir)
		if err != nil {
			return fmt.Errorf("fleet: list %s's inference table: %w", f.name, err)
		}
		for _, file := range files {
			if file.Table == tables.TableInference {
				rows += file.Rows
				// Embedded, each gateway's files are in a directory of its own.
				replicas[dir+"/"+file.Replica] = true
			}
		}
	}
	sc.notes = append(sc.notes, fmt.Sprintf("%s: `tables.List` counts **%d rows** in its table directories, in files of %d replica(s); requests answered %d (every 200, checks and warm-ups included): **%d / %d = %.4f**; the writers dropped %d and failed %d.",
		f.name, rows, len(replicas), answered, rows, answered, float64(rows)/float64(answered), f.dropped, f.failed))
	var errs []error
	if rows != int64(answered) {
		errs = append(errs, fmt.Errorf("fleet: %s: %d rows recorded for %d requests answered", f.name, rows, answered))
	}
	if len(replicas) != len(f.ids) {
		errs = append(errs, fmt.Errorf("fleet: %s: rows from %d replicas, want %d", f.name, len(replicas), len(f.ids)))
	}
	if f.dropped != 0 || f.failed != 0 {
		errs = append(errs, fmt.Errorf("fleet: %s: the writers dropped %d rows and failed %d", f.name, f.dropped, f.failed))
	}
	return errors.Join(errs...)
}
