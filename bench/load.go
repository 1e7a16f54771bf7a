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

// result is one round against one target.
type result struct {
	requests int           // completed in the measured period
	errors   int           // in warm-up and measured period alike
	elapsed  time.Duration // length of the measured period
	latency  []time.Duration
	firstErr string
	cpu      time.Duration // process CPU time (user+system) in the measured period
	// others is the share of the machine's CPU time that other processes
	// used in the measured period, or -1 where /proc/stat is unavailable.
	others float64
}

func (r *result) throughput() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the CPU time the whole process (load generator and the
// server under test) spent per request; the generator's share is the same for
// both targets.
func (r *result) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

// percentile returns the q-quantile (0 < q ≤ 1) of the sorted latencies by
// nearest rank.
func (r *result) percentile(q float64) time.Duration {
	if len(r.latency) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latency))+0.5) - 1
	return r.latency[min(max(i, 0), len(r.latency)-1)]
}

// drive runs a closed loop of `workers` clients against addr, each sending
// body as soon as its previous answer arrived, for warmup then measure. Only
// requests sent after the warm-up count towards throughput and latency.
func drive(addr, path string, body []byte, workers int, warmup, measure time.Duration) *result {
	client := &fasthttp.HostClient{
		Addr:                          addr,
		MaxConns:                      workers,
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  10 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
	defer client.CloseIdleConnections()

	start := time.Now()
	measureFrom, stopAt := start.Add(warmup), start.Add(warmup+measure)
	// Room for 200k requests/s in all before a worker's slice has to grow.
	perWorker := int(measure.Seconds()*200_000)/workers + 1024

	type tally struct {
		latency  []time.Duration
		errors   int
		firstErr string
	}
	tallies := make([]tally, workers)
	atStart := make(chan [2]time.Duration, 1)
	time.AfterFunc(warmup, func() { atStart <- [2]time.Duration{processCPU(), machineBusy()} })
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			t.latency = make([]time.Duration, 0, perWorker)
			req, resp := newPost(addr, path, body), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				sent := time.Now()
				if !sent.Before(stopAt) {
					return
				}
				err := client.Do(req, resp)
				took := time.Since(sent)
				if err != nil || resp.StatusCode() != fasthttp.StatusOK {
					t.errors++
					if t.firstErr == "" {
						if err != nil {
							t.firstErr = err.Error()
						} else {
							t.firstErr = string(resp.Body())
						}
					}
					continue
				}
				if !sent.Before(measureFrom) {
					t.latency = append(t.latency, took)
				}
			}
		}(&tallies[w])
	}
	wg.Wait()
	// The last requests may end a little after stopAt; count the period up
	// to when they did.
	r := &result{elapsed: time.Since(measureFrom)}
	start0 := <-atStart
	r.cpu = processCPU() - start0[0]
	r.others = -1
	if busy := machineBusy(); busy >= 0 && start0[1] >= 0 {
		r.others = max(0, float64(busy-start0[1]-r.cpu)/float64(r.elapsed*time.Duration(runtime.NumCPU())))
	}
	for _, t := range tallies {
		r.latency = append(r.latency, t.latency...)
		r.errors += t.errors
		if r.firstErr == "" {
			r.firstErr = t.firstErr
		}
	}
	r.requests = len(r.latency)
	slices.Sort(r.latency)
	return r
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

// newPost returns a pooled JSON POST of body to path on addr.
func newPost(addr, path string, body []byte) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	return req
}
