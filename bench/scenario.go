package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mlgate/mlgate/serving/onnx"
)

// scenario is one benchmark: a floor and mlgate answering the same requests,
// and the ways (phases) to drive them.
type scenario struct {
	name string
	// heading follows the date in the report's heading.
	heading string
	// bullets describe the setup in the report, after the machine and the
	// software.
	bullets []string
	// targets are the reference (the floor), then the target under test
	// (mlgate); the ratios and goals are the second's over the first's.
	targets []*target
	load    load
	phases  []*phase
	close   func()
	// beforeRound and afterRound, when not nil, run before and after each
	// round of each target, outside the measured period.
	beforeRound, afterRound func(t *target) error
	// after, when not nil, runs once every phase is measured, before close.
	// It may add notes; its error (a check that failed) fails the run but
	// does not stop the report.
	after    func() error
	afterErr error
	// notes follow the phases in the report.
	notes []string
	// rows, when more than 1, is the rows in each request: the report then
	// gives rows/s beside requests/s.
	rows int
	// sideName names the server whose CPU load.sideCPU reads, in the
	// report's column (empty: Redis); sideNote, when not empty, says where
	// that figure comes from.
	sideName, sideNote string
}

func (sc *scenario) side() string {
	if sc.sideName == "" {
		return "Redis"
	}
	return sc.sideName
}

// target is a running server under test.
type target struct {
	name string
	srv  *server
	// load, when not nil, is what this target is sent instead of the
	// scenario's load (e.g. two routes of one server).
	load *load
}

// loadOf returns what t is sent.
func (sc *scenario) loadOf(t *target) load {
	if t.load != nil {
		return *t.load
	}
	return sc.load
}

// phase is one way of driving the targets: a closed loop of workers, or an
// open loop at a fixed rate. Each target runs cfg.rounds rounds, interleaved
// floor, mlgate, floor, mlgate...
type phase struct {
	// title heads the phase in the report when a scenario has several.
	title string
	// key tells the phase's CPU profiles apart when a scenario has several.
	key      string
	workers  int     // closed loop: workers, each sending when its last answer came
	rate     float64 // open loop: requests started per second, whatever the answers
	maxConns int     // open loop: connections at most
	// Goals, checked on the second target (mlgate); zero for none.
	minRatio    float64       // throughput ≥ minRatio × the floor's
	maxP99      time.Duration // p99 below maxP99 in every round
	maxCPURatio float64       // CPU/request ≤ maxCPURatio × the floor's (the means)
	lowerP99    bool          // p99 (the mean of the rounds') below the floor's
	runs        [][]*result   // [target][round]
}

func (p *phase) open() bool { return p.rate > 0 }

// measure runs the phases. A failed request does not stop it; failures says
// afterwards which rounds had any.
func (sc *scenario) measure(cfg options) error {
	for _, p := range sc.phases {
		p.runs = make([][]*result, len(sc.targets))
		for round := 1; round <= cfg.rounds; round++ {
			for i, t := range sc.targets {
				how := fmt.Sprintf("%d workers", p.workers)
				if p.open() {
					how = fmt.Sprintf("open loop at %.0f/s", p.rate)
				}
				fmt.Fprintf(os.Stderr, "%s round %d/%d: %s, %s, %s warm-up + %s ...", sc.name, round, cfg.rounds, t.name, how, cfg.warmup, cfg.duration)
				if sc.beforeRound != nil {
					if err := sc.beforeRound(t); err != nil {
						return err
					}
				}
				var profiling chan error
				if cfg.cpuprofile != "" && round == 1 {
					name := cfg.cpuprofile + "-" + sc.name
					if len(sc.phases) > 1 {
						name += "-" + p.key
					}
					profiling = profile(name+"-"+t.name+".pprof", cfg.warmup, cfg.duration)
				}
				var r *result
				if l := sc.loadOf(t); l.grpc != nil {
					if p.open() || t.srv.grpcAddr == "" {
						return fmt.Errorf("%s: a gRPC load needs a closed loop and a target serving gRPC", t.name)
					}
					r = grpcClosedLoop(t.srv.grpcAddr, l, p.workers)
				} else if p.open() {
					r = openLoop(t.srv.addrs(), sc.loadOf(t), p.rate, p.maxConns)
				} else {
					r = closedLoop(t.srv.addrs(), sc.loadOf(t), p.workers)
				}
				if profiling != nil {
					if err := <-profiling; err != nil {
						return err
					}
				}
				p.runs[i] = append(p.runs[i], r)
				if sc.afterRound != nil {
					if err := sc.afterRound(t); err != nil {
						return err
					}
				}
				fmt.Fprintf(os.Stderr, " %.0f req/s, p50 %s, p99 %s, max %s, CPU %s/req", r.throughput(),
					fmtLatency(r.percentile(0.5)), fmtLatency(r.percentile(0.99)), fmtLatency(r.percentile(1)), fmtLatency(r.cpuPerRequest()))
				if r.sideCPU >= 0 {
					fmt.Fprintf(os.Stderr, ", %s CPU %s/req", sc.side(), fmtLatency(r.perRequest(r.sideCPU)))
				}
				if p.open() {
					fmt.Fprintf(os.Stderr, ", send lag p99 %s", fmtLatency(quantile(r.lag, 0.99)))
				}
				fmt.Fprintf(os.Stderr, ", other load %s, %d errors\n", fmtShare(r.others), r.errors)
			}
		}
	}
	return nil
}

// failures reports every round that had a failed request.
func (sc *scenario) failures() error {
	errs := []error{sc.afterErr}
	for _, p := range sc.phases {
		for i, t := range sc.targets {
			for round, r := range p.runs[i] {
				if r.errors > 0 {
					errs = append(errs, fmt.Errorf("%s, %s round %d: %d requests failed (first: %s); the figures are not valid", sc.name, t.name, round+1, r.errors, r.firstErr))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// summary is the mean of a target's rounds in a phase (max: the largest).
type summary struct {
	throughput    float64
	p50, p99, max time.Duration
	lag99         time.Duration
	cpu, sideCPU  time.Duration
	others        float64
	errors        int
}

func summarise(runs []*result) summary {
	var s summary
	for _, r := range runs {
		s.throughput += r.throughput()
		s.p50 += r.percentile(0.5)
		s.p99 += r.percentile(0.99)
		s.max = max(s.max, r.percentile(1))
		s.lag99 += quantile(r.lag, 0.99)
		s.cpu += r.cpuPerRequest()
		s.sideCPU += r.perRequest(r.sideCPU)
		s.others += r.others
		s.errors += r.errors
	}
	n := len(runs)
	s.throughput /= float64(n)
	s.p50 /= time.Duration(n)
	s.p99 /= time.Duration(n)
	s.lag99 /= time.Duration(n)
	s.cpu /= time.Duration(n)
	s.sideCPU /= time.Duration(n)
	s.others /= float64(n)
	return s
}

// markdown renders the scenario's run as a block for RESULTS.md.
func (sc *scenario) markdown(cfg options) string {
	var b strings.Builder
	now := time.Now().UTC()
	cpus := runtime.NumCPU()
	side := sc.load.sideCPU != nil
	fmt.Fprintf(&b, "### %s, %s\n\n", now.Format("2006-01-02 15:04 MST"), sc.heading)
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs (GOMAXPROCS %d), %s/%s\n", cpuModel(), cpus, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Software: %s, ONNX Runtime %s, session threads intra-op %d, inter-op %d\n", runtime.Version(), onnx.Version(), sessionOptions.IntraOpThreads, sessionOptions.InterOpThreads)
	fmt.Fprintf(&b, "- Command: `%s`\n", strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "))
	for _, s := range sc.bullets {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	switch {
	case side && sc.sideNote != "":
		fmt.Fprintf(&b, "- Note: the load generator, the servers under test and %s share this machine's %d CPUs, so absolute figures understate dedicated servers; compare the ratio. %s\n", sc.side(), cpus, sc.sideNote)
	case side:
		fmt.Fprintf(&b, "- Note: the load generator, the server under test and Redis share this machine's %d CPUs, so absolute figures understate dedicated servers; compare the ratio. Redis's CPU (from its INFO) is its own column, not other load.\n", cpus)
	default:
		fmt.Fprintf(&b, "- Note: the load generator and the server under test share this machine's %d CPUs, so absolute figures understate a dedicated server; compare the ratio.\n", cpus)
	}
	if cfg.cpuprofile != "" {
		b.WriteString("- Note: the first round of each target ran under the CPU profiler (-cpuprofile).\n")
	}
	for _, p := range sc.phases {
		if len(sc.phases) > 1 {
			fmt.Fprintf(&b, "\n#### %s\n\n", p.title)
		}
		sc.phaseMarkdown(&b, cfg, p, side)
	}
	if len(sc.notes) > 0 {
		b.WriteString("\n")
		for _, s := range sc.notes {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	return b.String()
}

func (sc *scenario) phaseMarkdown(b *strings.Builder, cfg options, p *phase, side bool) {
	per := fmt.Sprintf("%s warm-up + %s measured per round, %d round(s) per target interleaved", cfg.warmup, cfg.duration, cfg.rounds)
	if p.open() {
		fmt.Fprintf(b, "- Load: open loop, one request started every %s (%.0f/s) whatever the answers, up to %d connections; latency counts from each request's scheduled start; %s, %s\n",
			fmtLatency(time.Duration(float64(time.Second)/p.rate)), p.rate, p.maxConns, sc.bodySizes(), per)
	} else {
		fmt.Fprintf(b, "- Load: %d closed-loop workers over loopback, %s, %s\n", p.workers, sc.bodySizes(), per)
	}

	cols := []string{"target", "round"}
	if p.open() {
		cols = append(cols, "offered/s", "answered/s", "p50", "p99", "max", "send lag p99")
	} else {
		cols = append(cols, "requests/s")
		if sc.rows > 1 {
			cols = append(cols, "rows/s")
		}
		cols = append(cols, "p50", "p99")
	}
	cols = append(cols, "CPU/request")
	if side {
		cols = append(cols, sc.side()+" CPU/request")
	}
	cols = append(cols, "other load", "errors")
	b.WriteString("\n| " + strings.Join(cols, " | ") + " |\n|---|---|" + strings.Repeat("---:|", len(cols)-2) + "\n")

	row := func(name, round string, bold bool, offered, throughput float64, p50, p99, mx, lag, cpu, sideCPU time.Duration, others float64, errs int) {
		em := func(s string) string {
			if bold {
				return "**" + s + "**"
			}
			return s
		}
		cells := []string{em(name), round}
		if p.open() {
			cells = append(cells, fmt.Sprintf("%.0f", offered), em(fmt.Sprintf("%.0f", throughput)), em(fmtLatency(p50)), em(fmtLatency(p99)), fmtLatency(mx), fmtLatency(lag))
		} else {
			cells = append(cells, em(fmt.Sprintf("%.0f", throughput)))
			if sc.rows > 1 {
				cells = append(cells, em(fmt.Sprintf("%.0f", throughput*float64(sc.rows))))
			}
			cells = append(cells, em(fmtLatency(p50)), em(fmtLatency(p99)))
		}
		cells = append(cells, em(fmtLatency(cpu)))
		if side {
			cells = append(cells, fmtLatency(sideCPU))
		}
		cells = append(cells, fmtShare(others), fmt.Sprint(errs))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	for i := range cfg.rounds {
		for t, tg := range sc.targets {
			r := p.runs[t][i]
			row(tg.name, fmt.Sprint(i+1), false, r.offered, r.throughput(), r.percentile(0.5), r.percentile(0.99), r.percentile(1),
				quantile(r.lag, 0.99), r.cpuPerRequest(), r.perRequest(r.sideCPU), r.others, r.errors)
		}
	}
	sums := make([]summary, len(sc.targets))
	for t, tg := range sc.targets {
		s := summarise(p.runs[t])
		sums[t] = s
		row(tg.name, "mean", true, p.rate, s.throughput, s.p50, s.p99, s.max, s.lag99, s.cpu, s.sideCPU, s.others, s.errors)
	}

	busiest := 0.0
	for _, runs := range p.runs {
		for _, r := range runs {
			busiest = max(busiest, r.others)
		}
	}
	if busiest > 0.10 {
		fmt.Fprintf(b, "\n**Warning**: other processes used up to %s of the machine's CPU during a round; throughput and latency are unreliable, CPU/request less so.\n", fmtShare(busiest))
	}

	floor, gw := sums[0], sums[1]
	floorName, gwName := sc.targets[0].name, sc.targets[1].name
	ratio := gw.throughput / floor.throughput
	fmt.Fprintf(b, "\n%s / %s: throughput **%.2f×**, p50 %.2f×, p99 %.2f×, CPU/request %.2f× (%+.1f µs)",
		gwName, floorName, ratio, float64(gw.p50)/float64(floor.p50), float64(gw.p99)/float64(floor.p99),
		float64(gw.cpu)/float64(floor.cpu), float64(gw.cpu-floor.cpu)/float64(time.Microsecond))
	if side {
		if floor.sideCPU > 0 {
			fmt.Fprintf(b, ", %s CPU/request %.2f×", sc.side(), float64(gw.sideCPU)/float64(floor.sideCPU))
		} else {
			fmt.Fprintf(b, ", %s CPU/request n/a (none counted for %s)", sc.side(), floorName)
		}
	}
	b.WriteString(".")
	if p.minRatio > 0 {
		fmt.Fprintf(b, " Goal (%s ≥ %g × %s throughput): **%s**.", gwName, p.minRatio, floorName, verdict(ratio >= p.minRatio))
	}
	if p.maxP99 > 0 {
		worst := slices.MaxFunc(p.runs[1], func(a, b *result) int { return int(a.percentile(0.99) - b.percentile(0.99)) })
		worstFloor := slices.MaxFunc(p.runs[0], func(a, b *result) int { return int(a.percentile(0.99) - b.percentile(0.99)) })
		fmt.Fprintf(b, " mlgate's p99 at %.0f requests/s, worst round: **%s** (floor: %s). Goal (mlgate p99 < %s at %.0f requests/s): **%s**.",
			p.rate, fmtLatency(worst.percentile(0.99)), fmtLatency(worstFloor.percentile(0.99)), fmtLatency(p.maxP99), p.rate,
			verdict(worst.percentile(0.99) < p.maxP99 && worst.errors == 0))
	}
	if p.maxCPURatio > 0 {
		cpu := float64(gw.cpu) / float64(floor.cpu)
		lo, median, hi := roundRatios(p.runs[0], p.runs[1])
		fmt.Fprintf(b, " Goal (%s CPU/request ≤ %g × %s's): **%s** (%.2f×; round by round %.2f–%.2f×, median %.2f×).", gwName, p.maxCPURatio, floorName, verdict(cpu <= p.maxCPURatio), cpu, lo, hi, median)
	}
	if p.lowerP99 {
		fmt.Fprintf(b, " Goal (%s p99 < %s's): **%s** (%s against %s).", gwName, floorName, verdict(gw.p99 < floor.p99 && gw.errors == 0), fmtLatency(gw.p99), fmtLatency(floor.p99))
	}
	if p.minRatio == 0 && p.maxP99 == 0 && p.maxCPURatio == 0 && !p.lowerP99 {
		b.WriteString(" (For information; no goal.)")
	}
	b.WriteString("\n")
	// Further targets (no goal) against the first.
	for t := 2; t < len(sums); t++ {
		s := sums[t]
		fmt.Fprintf(b, "\n%s / %s: throughput **%.2f×**, p50 %.2f×, p99 %.2f×, CPU/request %.2f× (%+.1f µs). (For information; no goal.)\n",
			sc.targets[t].name, floorName, s.throughput/floor.throughput, float64(s.p50)/float64(floor.p50), float64(s.p99)/float64(floor.p99),
			float64(s.cpu)/float64(floor.cpu), float64(s.cpu-floor.cpu)/float64(time.Microsecond))
	}
}

// roundRatios returns the smallest, the median and the largest ratio of
// CPU/request of target's round i to reference's round i (the rounds run
// next to each other).
func roundRatios(reference, target []*result) (lo, median, hi float64) {
	var ratios []float64
	for i := range min(len(reference), len(target)) {
		ratios = append(ratios, float64(target[i].cpuPerRequest())/float64(reference[i].cpuPerRequest()))
	}
	if len(ratios) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	slices.Sort(ratios)
	n := len(ratios)
	median = ratios[n/2]
	if n%2 == 0 {
		median = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return ratios[0], median, ratios[n-1]
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// bodySizes describes the request bodies, per target when they differ.
func (sc *scenario) bodySizes() string {
	var each []string
	for _, t := range sc.targets {
		if t.load != nil {
			for _, t := range sc.targets {
				each = append(each, t.name+": "+sc.loadOf(t).sizes())
			}
			return strings.Join(each, "; ")
		}
	}
	return sc.load.sizes()
}

// sizes describes l's requests.
func (l load) sizes() string {
	if l.grpc != nil {
		return l.grpc.sizes()
	}
	return sizes(l.bodies)
}

func sizes(bodies [][]byte) string {
	lo, hi := len(bodies[0]), len(bodies[0])
	for _, body := range bodies {
		lo, hi = min(lo, len(body)), max(hi, len(body))
	}
	if lo == hi {
		return fmt.Sprintf("%d-byte request", lo)
	}
	return fmt.Sprintf("%d different requests of %d–%d bytes, sent in turn", len(bodies), lo, hi)
}
