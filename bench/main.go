// Command bench measures what mlgate costs on top of the least any gateway
// must do to answer a KServe V2 inference request.
//
// In one process it starts two servers on loopback:
//
//   - mlgate, wired as `mlgate serve` wires it (bbolt registry, local artifact
//     store, catalog of warmed sessions, open authentication), with the
//     modelzoo's linear model registered through the HTTP API as "linear" and
//     aliased champion;
//   - the floor: a bare fiber app with one route that decodes the request with
//     encoding/json, runs a pre-loaded ONNX Runtime session of the same model
//     file with the same session options, and encodes the answer with
//     encoding/json. It has no registry, no model resolution and almost no
//     validation.
//
// It then drives each in turn with the same closed-loop load (C workers, each
// sending the next request as soon as the previous answer arrives), in the
// order floor, mlgate, floor, mlgate, and reports requests/s and latency
// percentiles per round and their mean over the rounds.
//
// Absolute figures depend on the machine, on what else runs on it, and on the
// load generator sharing its CPUs with the servers. The floor exists so that
// this noise cancels out: both targets are measured in the same run, on the
// same machine, under the same generator, interleaved to cancel drift, so the
// ratio mlgate/floor is what to compare between runs and machines. The goal is
// mlgate ≥ 0.7 × the floor's throughput.
//
// The command exits non-zero if any request fails, so that a broken gateway is
// never reported as a fast one. Run it with `make bench`, or
// `go run ./bench -h` for the flags.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/onnx"
)

const (
	modelName = "linear"
	inferPath = "/v2/models/" + modelName + "/infer"
	goalRatio = 0.7
)

type options struct {
	duration, warmup time.Duration
	concurrency      int
	rows             int
	rounds           int
	out              string
	cpuprofile       string
}

func main() {
	var cfg options
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured `period` of each round")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up `period` before each round's measurement")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "closed-loop `workers` (connections) sending requests")
	flag.IntVar(&cfg.rows, "rows", 1, "`rows` of 4 features per request")
	flag.IntVar(&cfg.rounds, "rounds", 2, "`rounds` per target, interleaved floor, mlgate, floor, mlgate...")
	flag.StringVar(&cfg.out, "out", "", "also append the markdown report to `file` (e.g. bench/RESULTS.md)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured period of each target's first round to `prefix`-floor.pprof and prefix-mlgate.pprof")
	flag.Parse()
	if cfg.duration <= 0 || cfg.warmup < 0 || cfg.concurrency < 1 || cfg.rows < 1 || cfg.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -duration, -concurrency, -rows and -rounds must be positive, -warmup not negative")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	srv  *server
	runs []*result
}

func run(cfg options) error {
	lib, err := onnx.FindLibrary("")
	if err != nil {
		return err
	}
	if err := onnx.Init(lib); err != nil {
		return err
	}
	modelPath := modelzoo.Path(modelzoo.Linear)

	floor, err := startFloor(modelPath)
	if err != nil {
		return fmt.Errorf("start the floor: %w", err)
	}
	defer floor.close()
	gateway, err := startGateway(modelPath)
	if err != nil {
		return fmt.Errorf("start mlgate: %w", err)
	}
	defer gateway.close()

	body, want := request(cfg.rows)
	targets := []*target{{name: "floor", srv: floor}, {name: "mlgate", srv: gateway}}
	for _, t := range targets {
		if err := check(t.srv.addr, body, want); err != nil {
			return fmt.Errorf("%s answers wrongly, not benchmarking it: %w", t.name, err)
		}
	}

	for round := 1; round <= cfg.rounds; round++ {
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s, %d workers, %s warm-up + %s ...", round, cfg.rounds, t.name, cfg.concurrency, cfg.warmup, cfg.duration)
			var profiling chan error
			if cfg.cpuprofile != "" && round == 1 {
				profiling = profile(cfg.cpuprofile+"-"+t.name+".pprof", cfg.warmup, cfg.duration)
			}
			r := drive(t.srv.addr, inferPath, body, cfg.concurrency, cfg.warmup, cfg.duration)
			if profiling != nil {
				if err := <-profiling; err != nil {
					return err
				}
			}
			t.runs = append(t.runs, r)
			fmt.Fprintf(os.Stderr, " %.0f req/s, p50 %s, p99 %s, CPU %s/req, other load %s, %d errors\n",
				r.throughput(), fmtLatency(r.percentile(0.5)), fmtLatency(r.percentile(0.99)), fmtLatency(r.cpuPerRequest()), fmtShare(r.others), r.errors)
		}
	}

	report := markdown(cfg, len(body), targets)
	fmt.Print(report)
	if cfg.out != "" {
		f, err := os.OpenFile(cfg.out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.WriteString(f, "\n"+report)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for _, t := range targets {
		for i, r := range t.runs {
			if r.errors > 0 {
				return fmt.Errorf("%s round %d: %d requests failed (first: %s); the figures above are not valid", t.name, i+1, r.errors, r.firstErr)
			}
		}
	}
	return nil
}

// request returns the body of a request for rows rows, each [1,2,3,4], and
// the linear model's answer: y = x·W + b, [4,10] for each row.
func request(rows int) ([]byte, []float32) {
	b := []byte(`{"inputs":[{"name":"x","shape":[`)
	b = strconv.AppendInt(b, int64(rows), 10)
	b = append(b, `,4],"datatype":"FP32","data":[`...)
	want := make([]float32, 0, 2*rows)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "1,2,3,4"...)
		want = append(want, 4, 10)
	}
	return append(b, "]}]}"...), want
}

// check sends the request once and compares the answer with want.
func check(addr string, body []byte, want []float32) error {
	req, resp := newPost(addr, inferPath, body), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	var got floorResponse
	if err := json.Unmarshal(resp.Body(), &got); err != nil {
		return fmt.Errorf("%w: %s", err, resp.Body())
	}
	if len(got.Outputs) != 1 || got.Outputs[0].Name != "y" || fmt.Sprint(got.Outputs[0].Data) != fmt.Sprint(want) {
		return errors.New("unexpected answer: " + string(resp.Body()))
	}
	return nil
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

// summary is the mean of a target's rounds.
type summary struct {
	throughput float64
	p50, p99   time.Duration
	cpu        time.Duration
	others     float64
	errors     int
}

func summarise(runs []*result) summary {
	var s summary
	for _, r := range runs {
		s.throughput += r.throughput()
		s.p50 += r.percentile(0.5)
		s.p99 += r.percentile(0.99)
		s.cpu += r.cpuPerRequest()
		s.others += r.others
		s.errors += r.errors
	}
	n := len(runs)
	s.throughput /= float64(n)
	s.p50 /= time.Duration(n)
	s.p99 /= time.Duration(n)
	s.cpu /= time.Duration(n)
	s.others /= float64(n)
	return s
}

// markdown renders the run as a block that can be pasted into RESULTS.md.
func markdown(cfg options, bodyBytes int, targets []*target) string {
	var b strings.Builder
	now := time.Now().UTC()
	cpus := runtime.NumCPU()
	fmt.Fprintf(&b, "### %s, %d workers, %d row(s) per request\n\n", now.Format("2006-01-02 15:04 MST"), cfg.concurrency, cfg.rows)
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs (GOMAXPROCS %d), %s/%s\n", cpuModel(), cpus, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Software: %s, ONNX Runtime %s, session threads intra-op %d, inter-op %d\n", runtime.Version(), onnx.Version(), sessionOptions.IntraOpThreads, sessionOptions.InterOpThreads)
	fmt.Fprintf(&b, "- Command: `%s`\n", strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "))
	fmt.Fprintf(&b, "- Load: %d closed-loop workers over loopback, %d-byte request, %s warm-up + %s measured per round, %d round(s) per target interleaved\n",
		cfg.concurrency, bodyBytes, cfg.warmup, cfg.duration, cfg.rounds)
	fmt.Fprintf(&b, "- Note: the load generator and the server under test share this machine's %d CPUs, so absolute figures understate a dedicated server; compare the ratio.\n", cpus)
	if cfg.cpuprofile != "" {
		b.WriteString("- Note: the first round of each target ran under the CPU profiler (-cpuprofile).\n")
	}
	b.WriteString("\n| target | round | requests/s | p50 | p99 | CPU/request | other load | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for i := range cfg.rounds {
		for _, t := range targets {
			r := t.runs[i]
			fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %d |\n", t.name, i+1, r.throughput(),
				fmtLatency(r.percentile(0.5)), fmtLatency(r.percentile(0.99)), fmtLatency(r.cpuPerRequest()), fmtShare(r.others), r.errors)
		}
	}
	sums := make([]summary, len(targets))
	for i, t := range targets {
		sums[i] = summarise(t.runs)
		s := sums[i]
		fmt.Fprintf(&b, "| **%s** | mean | **%.0f** | **%s** | **%s** | **%s** | %s | %d |\n", t.name, s.throughput,
			fmtLatency(s.p50), fmtLatency(s.p99), fmtLatency(s.cpu), fmtShare(s.others), s.errors)
	}
	busiest := 0.0
	for _, t := range targets {
		for _, r := range t.runs {
			busiest = max(busiest, r.others)
		}
	}
	if busiest > 0.10 {
		fmt.Fprintf(&b, "\n**Warning**: other processes used up to %s of the machine's CPU during a round; throughput and latency are unreliable, CPU/request less so.\n", fmtShare(busiest))
	}
	floor, gw := sums[0], sums[1]
	ratio := gw.throughput / floor.throughput
	verdict := "met"
	if ratio < goalRatio {
		verdict = "NOT met"
	}
	fmt.Fprintf(&b, "\nmlgate / floor: throughput **%.2f×**, p50 %.2f×, p99 %.2f×, CPU/request %.2f× (%+.1f µs). Goal (mlgate ≥ %.1f × floor throughput): **%s**.\n",
		ratio, float64(gw.p50)/float64(floor.p50), float64(gw.p99)/float64(floor.p99),
		float64(gw.cpu)/float64(floor.cpu), float64(gw.cpu-floor.cpu)/float64(time.Microsecond), goalRatio, verdict)
	return b.String()
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
