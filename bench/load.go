package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// load is what the generators send to a target: JSON POSTs to path, with
// the bodies in turn, for warmup and then the measured period.
type load struct {
	path   string
	bodies [][]byte
	// contentType is the requests' Content-Type ("": application/json);
	// header, when not empty, is an extra header of every request, as
	// name, value.
	contentType string
	header      [2]string
	// grpc, when not nil, makes this a gRPC load: ModelInfer calls to the
	// target's gRPC address instead of HTTP POSTs (path and bodies unused).
	grpc            *grpcLoad
	warmup, measure time.Duration
	// sideCPU, when not nil, returns the CPU time a server process that the
	// targets call (Redis) has used so far. Its share is then reported apart
	// rather than as other load.
	sideCPU func() time.Duration
}

// result is one round against one target.
type result struct {
	requests int           // answered 200 among those sent (closed loop) or scheduled (open loop) in the measured period
	answered int           // answered 200 in warm-up and measured period alike
	errors   int           // in warm-up and measured period alike
	elapsed  time.Duration // length of the measured period (open loop: of its schedule)
	latency  []time.Duration
	firstErr string
	cpu      time.Duration // process CPU time (user+system) in the measured period
	// sideCPU is the CPU time of load.sideCPU's server in the measured
	// period, or -1 without one.
	sideCPU time.Duration
	// others is the share of the machine's CPU time that other processes
	// used in the measured period, or -1 where /proc/stat is unavailable.
	others float64

	// Open loop only: the rate requests were started at, and for each
	// measured request how late the generator sent it after its scheduled
	// time (sorted). A lag near the latencies would mean the generator, not
	// the target, set them.
	offered float64
	lag     []time.Duration
}

func (r *result) throughput() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// perRequest divides a CPU time of the measured period by the requests; the
// generator's share is the same for both targets.
func (r *result) perRequest(cpu time.Duration) time.Duration {
	if r.requests == 0 || cpu < 0 {
		return 0
	}
	return cpu / time.Duration(r.requests)
}

func (r *result) cpuPerRequest() time.Duration { return r.perRequest(r.cpu) }

// percentile returns the q-quantile (0 < q ≤ 1) of the sorted latencies by
// nearest rank.
func (r *result) percentile(q float64) time.Duration { return quantile(r.latency, q) }

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// tally is what one worker (closed loop) or the open-loop generator counts.
type tally struct {
	latency  []time.Duration
	answered int
	errors   int
	firstErr string
}

// ok counts a request done and says whether it was answered 200.
func (t *tally) ok(err error, resp *fasthttp.Response) bool {
	if err == nil && resp.StatusCode() == fasthttp.StatusOK {
		t.answered++
		return true
	}
	t.errors++
	if t.firstErr == "" {
		if err != nil {
			t.firstErr = err.Error()
		} else {
			t.firstErr = strconv.Itoa(resp.StatusCode()) + ": " + string(resp.Body())
		}
	}
	return false
}

// closedLoop runs `workers` clients against addrs, each sending its next
// request as soon as its previous answer arrived. Only requests sent after
// the warm-up count towards throughput and latency. With several addresses
// (the replicas of a fleet) each worker sends its requests to them in turn,
// as a round-robin load balancer would, keeping a connection to each.
func closedLoop(addrs []string, l load, workers int) *result {
	clients := newClients(addrs, workers)
	defer closeClients(clients)
	return runWorkers(l, workers, func(w int, t *tally, measureFrom, stopAt time.Time) {
		reqs := make([]*fasthttp.Request, len(addrs))
		for i, addr := range addrs {
			reqs[i] = l.newPost(addr, nil)
			defer fasthttp.ReleaseRequest(reqs[i])
		}
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		// Worker w sends bodies w, w+workers, w+2·workers..., to
		// addresses w, w+1, w+2...
		to := w % len(addrs)
		for b := w % len(l.bodies); ; b = (b + workers) % len(l.bodies) {
			sent := time.Now()
			if !sent.Before(stopAt) {
				return
			}
			req := reqs[to]
			req.SetBodyRaw(l.bodies[b])
			err := clients[to].Do(req, resp)
			if to++; to == len(addrs) {
				to = 0
			}
			took := time.Since(sent)
			if t.ok(err, resp) && !sent.Before(measureFrom) {
				t.latency = append(t.latency, took)
			}
		}
	})
}

// runWorkers runs a closed loop of `workers` goroutines, each running work
// with its own tally and the bounds of the measured period, and returns
// what they measured: requests/s and CPU over the period, latencies of the
// requests sent in it.
func runWorkers(l load, workers int, work func(w int, t *tally, measureFrom, stopAt time.Time)) *result {
	start := time.Now()
	measureFrom, stopAt := start.Add(l.warmup), start.Add(l.warmup+l.measure)
	// Room for 200k requests/s in all before a worker's slice has to grow.
	perWorker := int(l.measure.Seconds()*200_000)/workers + 1024

	tallies := make([]tally, workers)
	meterAt := make(chan *meter, 1)
	time.AfterFunc(l.warmup, func() { meterAt <- startMeter(l.sideCPU) })
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			t := &tallies[w]
			t.latency = make([]time.Duration, 0, perWorker)
			work(w, t, measureFrom, stopAt)
		})
	}
	wg.Wait()
	r := &result{}
	// The last requests may end a little after stopAt; count the period up
	// to when they did.
	(<-meterAt).stop(r)
	for _, t := range tallies {
		r.merge(&t)
	}
	r.requests = len(r.latency)
	slices.Sort(r.latency)
	return r
}

// openLoop starts a request every 1/rate seconds, on a fixed schedule that
// does not wait for answers, to addrs in turn (round robin, as a load
// balancer would), each on a connection of its own when the previous ones to
// that address are busy (up to maxConns per address, then waiting for one).
// Latency runs from the request's scheduled start, not from when it was
// sent, so that a target that stalls is charged for the requests queued
// behind the stall (no coordinated omission). Requests scheduled in the
// measured period count; the generator waits for all to end.
func openLoop(addrs []string, l load, rate float64, maxConns int) *result {
	clients := newClients(addrs, maxConns)
	for _, c := range clients {
		c.MaxConnWaitTimeout = 10 * time.Second
	}
	defer closeClients(clients)

	interval := time.Duration(float64(time.Second) / rate)
	warm, total := int(l.warmup/interval), int((l.warmup+l.measure)/interval)
	type outcome struct {
		latency, lag time.Duration
		ok           bool
	}
	outcomes := make([]outcome, total)
	tallies := make([]tally, total) // only the failed ones get an error
	meterAt := make(chan *meter, 1)
	start := time.Now().Add(time.Millisecond)
	var wg sync.WaitGroup
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if i == warm {
			// Measuring starts with the first scheduled measured request.
			time.Sleep(time.Until(at))
			meterAt <- startMeter(l.sideCPU)
		}
		time.Sleep(time.Until(at))
		wg.Go(func() {
			to := i % len(addrs)
			req, resp := l.newPost(addrs[to], l.bodies[i%len(l.bodies)]), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lag := time.Since(at)
			err := clients[to].Do(req, resp)
			outcomes[i] = outcome{latency: time.Since(at), lag: lag, ok: tallies[i].ok(err, resp)}
		})
	}
	wg.Wait()
	r := &result{offered: rate}
	(<-meterAt).stop(r)
	// Throughput is over the schedule's measured period: the rate when every
	// request was answered, whenever the last answer came.
	r.elapsed = l.measure
	for i := range total {
		r.merge(&tallies[i])
		if i >= warm && outcomes[i].ok {
			r.latency = append(r.latency, outcomes[i].latency)
			r.lag = append(r.lag, outcomes[i].lag)
		}
	}
	r.requests = len(r.latency)
	slices.Sort(r.latency)
	slices.Sort(r.lag)
	return r
}

func (r *result) merge(t *tally) {
	r.latency = append(r.latency, t.latency...)
	r.answered += t.answered
	r.errors += t.errors
	if r.firstErr == "" {
		r.firstErr = t.firstErr
	}
}

// meter reads the clock and the CPU counters at the start of a measured
// period, and stop reads them again at its end.
type meter struct {
	side                func() time.Duration
	at                  time.Time
	cpu, busy, sideBase time.Duration
}

func startMeter(side func() time.Duration) *meter {
	m := &meter{side: side, at: time.Now(), cpu: processCPU(), busy: machineBusy(), sideBase: -1}
	if side != nil {
		m.sideBase = side()
	}
	return m
}

// stop sets r's measured period and CPU figures.
func (m *meter) stop(r *result) {
	r.elapsed = time.Since(m.at)
	r.cpu = processCPU() - m.cpu
	r.sideCPU = -1
	if m.side != nil {
		if now := m.side(); now >= 0 && m.sideBase >= 0 {
			r.sideCPU = now - m.sideBase
		}
	}
	r.others = -1
	if busy := machineBusy(); busy >= 0 && m.busy >= 0 {
		theirs := busy - m.busy - r.cpu - max(r.sideCPU, 0)
		r.others = max(0, float64(theirs)/float64(r.elapsed*time.Duration(runtime.NumCPU())))
	}
}

// machineBusy returns the CPU time all processes on the machine have used
// since boot, from /proc/stat, or -1 where it is unavailable.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return -1
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return -1
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// processCPU returns the CPU time, user and system, this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newClients returns a client of each address, each with up to maxConns
// connections.
func newClients(addrs []string, maxConns int) []*fasthttp.HostClient {
	clients := make([]*fasthttp.HostClient, len(addrs))
	for i, addr := range addrs {
		clients[i] = newClient(addr, maxConns)
	}
	return clients
}

func closeClients(clients []*fasthttp.HostClient) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

func newClient(addr string, maxConns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          addr,
		MaxConns:                      maxConns,
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  10 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
}

// newPost returns a pooled JSON POST of body to path on addr.
func newPost(addr, path string, body []byte) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	return req
}

// newPost returns a pooled POST of body to l's path on addr, with l's
// content type and header.
func (l load) newPost(addr string, body []byte) *fasthttp.Request {
	req := newPost(addr, l.path, body)
	if l.contentType != "" {
		req.Header.SetContentType(l.contentType)
	}
	if l.header[0] != "" {
		req.Header.Set(l.header[0], l.header[1])
	}
	return req
}

// post sends body once and returns the answer's body, or an error for a
// transport error or a status other than 200.
func post(addr, path string, body []byte) ([]byte, error) {
	req, resp := newPost(addr, path, body), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		return nil, err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return nil, &statusError{resp.StatusCode(), string(resp.Body())}
	}
	return slices.Clone(resp.Body()), nil
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.status) + ": " + e.body }
