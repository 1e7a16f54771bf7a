// Command bench measures what mlgate costs on top of the least any gateway
// must do to answer a request, and what its features (endpoint routing,
// inference tables, fleets, encodings, dynamic batching) cost or gain, in
// these scenarios:
//
//   - v2 (the default): a KServe V2 inference request for the modelzoo's
//     linear model, its inputs in the request;
//   - endpoint-predict: POST /v1/endpoints/churn/predict, an endpoint whose
//     two variants (90/10, sticky) are the linear model, against POST
//     /v1/models/linear/predict with the same inputs on the same mlgate (the
//     reference instead of a floor); goal: endpoint ≥ 0.97 × model predict's
//     throughput;
//   - logging: POST /v1/models/linear/predict against two mlgates, one with
//     the inference tables on (default settings) and one with them off (the
//     reference); goal: tables-on ≥ 0.95 × tables-off's throughput. After
//     the load it checks that every request tables-on answered is a row of
//     its Parquet files;
//   - predict-1x10: POST /v1/models/dense10/predict for one entity, whose 10
//     features mlgate reads from Redis (no cache) to fill the model's input;
//   - predict-100x50: the same for 100 entities of 50 features each (dense50),
//     measured in an open loop at a fixed rate (-rate, 300 requests/s) for its
//     latency, then in a closed loop for its throughput;
//   - feast-1x10 and feast-100x50 (issue 14): POST /v1/features/online over
//     Feast's Redis layout (a view of store feast-redis, no cache), 1 entity
//     × 10 features and 100 entities × 50, against Feast's own Python
//     feature server (`feast serve`, POST /get-online-features, one worker
//     process per CPU) on the same Redis and data, which Feast applied and
//     materialized from a Parquet file of -users drivers
//     (bench/testdata/feast_bench.py); both get the same bodies, and must
//     answer the values written before the load. Closed loop; goal: mlgate ≥
//     10 × Feast's throughput at a lower p99. Without a Python with
//     feast[redis] (TEST_FEAST_PYTHON, or .cache/feastenv/bin/python) they
//     are skipped, unless CI is set (then they fail);
//   - fleet: POST /v1/endpoints/churn/predict with the inference tables and
//     a drift monitor on, served by two fleets of mlgate replicas with a
//     PostgreSQL control plane (TEST_POSTGRES_DSN's server, a database of
//     each fleet's own): three replicas sharing one database and table
//     directory, the load round robin over them, against one replica
//     (the reference), in a closed loop and in an open loop at a fixed rate
//     (-fleet-rate); goal: three replicas' CPU/request ≤ 1.05 × one's.
//     Without a PostgreSQL it is skipped, unless CI is set (then it fails).
//     -fleet-store embedded makes it a control: the same targets as
//     independent gateways with the embedded control plane;
//   - grpc: the V2 protocol over gRPC, mlgate's ModelInfer (grpc.listen)
//     for the linear model with its input in raw_input_contents, against a
//     floor that is a bare grpc-go server implementing only ModelInfer over
//     the same pre-loaded ONNX Runtime session; goal (issue 13): mlgate ≥
//     0.90 × the floor's throughput. The load comes from a gRPC closed loop
//     (grpcload.go) whose workers share one connection (-grpc-conns);
//   - batch100: a 100-row FP32 batch to one mlgate's linear model in three
//     encodings, its three targets: V2 JSON over HTTP (the first, the
//     reference of the ratios), the binary tensor extension over HTTP, and
//     gRPC with raw contents; requests/s and rows/s of each, no goal;
//   - batching: the modelzoo's heaviest model (mlp_heavy) registered twice
//     in one mlgate, version 1 without dynamic batching (the reference) and
//     version 2 with it (metadata "batching"), each driven by 32 gRPC
//     callers of one row; goal (issue 13): batched ≥ 2 × unbatched's
//     throughput.
//
// For each but endpoint-predict (one mlgate, two routes), logging (two
// mlgates), feast (Feast's server and mlgate), fleet (two fleets), batch100 (one mlgate, three encodings) and
// batching (one mlgate, two versions) it starts two servers on loopback in this
// process:
//
//   - mlgate, wired as `mlgate serve` wires it (bbolt registry, local artifact
//     store, catalog of warmed sessions, open authentication; for the predict
//     scenarios online_store.redis pointing at TEST_REDIS_ADDR with a key
//     prefix of its own), set up through its HTTP API;
//   - the floor (grpc: see above): a bare fiber app with one route that decodes the request with
//     encoding/json, (predict scenarios) reads the features with go-redis from
//     the same hashes, one HMGET per entity in one pipeline, runs a pre-loaded
//     ONNX Runtime session of the same model file with the same session
//     options, and encodes the answer with encoding/json. It has no registry,
//     no model resolution and almost no validation.
//
// It then drives each in turn with the same load, in the order floor, mlgate,
// floor, mlgate, and reports requests/s and latency percentiles per round and
// their mean over the rounds. The closed loop has C workers, each sending the
// next request as soon as the previous answer arrives; the open loop starts
// requests on a fixed schedule and counts latency from each one's scheduled
// start.
//
// Absolute figures depend on the machine, on what else runs on it, and on the
// load generator (and Redis) sharing its CPUs with the servers. The floor
// exists so that this noise cancels out: both targets are measured in the same
// run, on the same machine, under the same generator, interleaved to cancel
// drift, so the ratio mlgate/floor is what to compare between runs and
// machines. The goals (issue 11): v2, mlgate ≥ 0.9 × the floor's throughput;
// predict-1x10, ≥ 0.85 ×; predict-100x50, mlgate's p99 < 10 ms at 300
// requests/s with no error, and its CPU/request at most 1.3 × the floor's.
//
// The command exits non-zero if any request fails, so that a broken gateway is
// never reported as a fast one. Run every scenario with `make bench` (which
// starts a Redis of its own, see with-redis.sh), or `go run ./bench -h` for
// the flags.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/mlgate/mlgate/serving/onnx"
)

type options struct {
	scenarios        []string
	duration, warmup time.Duration
	concurrency      int
	rows             int
	rate             float64
	fleetRate        float64
	fleetStore       string
	users            int
	rounds           int
	out              string
	cpuprofile       string
	grpcConns        int
	batchingDelay    time.Duration
	tables           bool
}

// scenarios are the scenario names, in the order -scenario all runs them.
var scenarios = []string{"v2", "endpoint-predict", "logging", "predict-1x10", "predict-100x50", "feast-1x10", "feast-100x50", "fleet", "grpc", "batch100", "batching"}

func startScenario(name string, cfg options) (*scenario, error) {
	switch name {
	case "v2":
		return startV2(cfg)
	case "endpoint-predict":
		return startEndpoint(cfg)
	case "logging":
		return startLogging(cfg)
	case "predict-1x10":
		return startPredict(cfg, predict1x10)
	case "predict-100x50":
		return startPredict(cfg, predict100x50)
	case "feast-1x10":
		return startFeast(cfg, feast1x10)
	case "feast-100x50":
		return startFeast(cfg, feast100x50)
	case "fleet":
		return startFleet(cfg)
	case "grpc":
		return startGRPC(cfg)
	case "batch100":
		return startBatch100(cfg)
	case "batching":
		return startBatching(cfg)
	}
	return nil, fmt.Errorf("no scenario %q", name)
}

func main() {
	var cfg options
	scenario := flag.String("scenario", "v2", "`names` of the scenarios to run, comma-separated ("+strings.Join(scenarios, ", ")+"), or all")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured `period` of each round")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up `period` before each round's measurement")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "closed-loop `workers` (connections) sending requests")
	flag.IntVar(&cfg.rows, "rows", 1, "v2 and grpc: `rows` of 4 features per request")
	// One shared connection costs the generator less CPU per call than one
	// per worker (its writes are batched): 60 against 75-85 µs/request on
	// the grpc floor, 2026-12-01, 2 CPUs.
	flag.IntVar(&cfg.grpcConns, "grpc-conns", 1, "gRPC scenarios: `connections` the workers share in turn, 0 for one per worker")
	flag.Float64Var(&cfg.rate, "rate", 300, "predict-100x50: open-loop `rate` in requests/s")
	flag.Float64Var(&cfg.fleetRate, "fleet-rate", 2000, "fleet: open-loop `rate` in requests/s, in all (spread over the replicas)")
	flag.StringVar(&cfg.fleetStore, "fleet-store", "postgres", "fleet: the replicas' control_plane.`store`: postgres (a fleet), or embedded (a control: independent gateways)")
	flag.DurationVar(&cfg.batchingDelay, "batching-delay", 500*time.Microsecond, "batching: the batched version's max_queue_delay, `period`")
	flag.BoolVar(&cfg.tables, "tables", true, "grpc, batch100 and batching: mlgate's inference tables on, as by default (false: a control without them)")
	flag.IntVar(&cfg.users, "users", 10000, "predict and feast scenarios: `entities` written to each feature view, and requested in turn")
	flag.IntVar(&cfg.rounds, "rounds", 2, "`rounds` per target, interleaved floor, mlgate, floor, mlgate...")
	flag.StringVar(&cfg.out, "out", "", "also append the markdown report to `file` (e.g. bench/RESULTS.md)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured period of each target's first round to `prefix`-SCENARIO[-PHASE]-TARGET.pprof")
	flag.Parse()
	for _, name := range strings.Split(*scenario, ",") {
		switch name = strings.TrimSpace(name); {
		case name == "all":
			cfg.scenarios = append(cfg.scenarios, scenarios...)
		case slices.Contains(scenarios, name):
			cfg.scenarios = append(cfg.scenarios, name)
		default:
			fmt.Fprintf(os.Stderr, "bench: -scenario: no scenario %q (want %s, or all)\n", name, strings.Join(scenarios, ", "))
			os.Exit(2)
		}
	}
	if cfg.duration <= 0 || cfg.warmup < 0 || cfg.concurrency < 1 || cfg.rows < 1 || cfg.rounds < 1 || cfg.rate <= 0 || cfg.fleetRate <= 0 || cfg.users < 100 || cfg.grpcConns < 0 || cfg.batchingDelay <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -duration, -concurrency, -rows, -rate, -fleet-rate, -batching-delay and -rounds must be positive, -warmup and -grpc-conns not negative, -users at least 100")
		os.Exit(2)
	}
	if cfg.fleetStore != "postgres" && cfg.fleetStore != "embedded" {
		fmt.Fprintln(os.Stderr, "bench: -fleet-store: want postgres or embedded")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run runs the scenarios one after the other, printing each one's report
// (and appending it to cfg.out) as it ends. It fails when a scenario cannot
// start or any request failed; a scenario that cannot run here (errSkip) is
// skipped with a message.
func run(cfg options) error {
	lib, err := onnx.FindLibrary("")
	if err != nil {
		return err
	}
	if err := onnx.Init(lib); err != nil {
		return err
	}
	var failed []error
	for i, name := range cfg.scenarios {
		sc, err := startScenario(name, cfg)
		if errors.Is(err, errSkip) {
			fmt.Fprintf(os.Stderr, "bench: %s: %v (set CI=true to make this a failure)\n", name, err)
			continue
		}
		if err != nil {
			return errors.Join(append(failed, fmt.Errorf("%s: %w", name, err))...)
		}
		err = sc.measure(cfg)
		if err == nil && sc.after != nil {
			sc.afterErr = sc.after()
		}
		sc.close()
		if err != nil {
			return errors.Join(append(failed, fmt.Errorf("%s: %w", name, err))...)
		}
		report := sc.markdown(cfg)
		if i > 0 {
			fmt.Println()
		}
		fmt.Print(report)
		if cfg.out != "" {
			if err := appendFile(cfg.out, "\n"+report); err != nil {
				return err
			}
		}
		if err := sc.failures(); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// profile writes a CPU profile of the period from after until after+period to
// path, and reports on the channel when it is done.
func profile(path string, after, period time.Duration) chan error {
	done := make(chan error, 1)
	time.AfterFunc(after, func() {
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			done <- err
			return
		}
		time.Sleep(period)
		pprof.StopCPUProfile()
		done <- f.Close()
	})
	return done
}

func fmtLatency(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func fmtShare(f float64) string {
	if f < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
