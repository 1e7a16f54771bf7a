package main

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestClosedLoopSpreadsOverAddresses: with three addresses, as for a fleet's
// replicas, every worker sends to each in turn, so that the three servers
// answer the same number of requests give or take one per worker.
func TestClosedLoopSpreadsOverAddresses(t *testing.T) {
	const workers = 4
	var counts [3]atomic.Int64
	var addrs []string
	for i := range counts {
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			counts[i].Add(1)
			ctx.SetBodyString("{}")
		}}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Shutdown()
		addrs = append(addrs, ln.Addr().String())
	}

	r := closedLoop(addrs, load{path: "/", bodies: [][]byte{[]byte("{}")}, measure: 100 * time.Millisecond}, workers)
	if r.errors != 0 || r.answered == 0 {
		t.Fatalf("%d answered, %d errors (first: %s)", r.answered, r.errors, r.firstErr)
	}
	var total int64
	for i := range counts {
		total += counts[i].Load()
	}
	if total != int64(r.answered) {
		t.Errorf("the servers answered %d requests, the loop counted %d", total, r.answered)
	}
	for i := range counts {
		if n := counts[i].Load(); n < total/3-workers || n > total/3+workers {
			t.Errorf("server %d answered %d of %d requests, want %d ± %d", i, n, total, total/3, workers)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, line string
		want       procStat
		wantErr    bool
	}{
		{
			name: "postgres backend",
			line: "4242 (postgres) S 4000 4000 4000 0 -1 4194560 1103 0 0 0 17 5 3 2 20 0 1 0 1234 225000000 3000 18446744073709551615\n",
			want: procStat{ppid: 4000, utime: 17, stime: 5, cutime: 3, cstime: 2},
		},
		{
			name: "command name with spaces and parentheses",
			line: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 100 200 300 400 20 0",
			want: procStat{ppid: 1, utime: 100, stime: 200, cutime: 300, cstime: 400},
		},
		{name: "no command name", line: "7 a R 1", wantErr: true},
		{name: "too few fields", line: "7 (a) R 1 7 7 0 -1 0 0 0 0 0 100 200 300", wantErr: true},
		{name: "not a number", line: "7 (a) R x 7 7 0 -1 0 0 0 0 0 100 200 300 400", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.line)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStat = %+v, %v; want %+v, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestProcessTreeCPU sums a process's time, its reaped children's and its
// live children's, and leaves out other processes.
func TestProcessTreeCPU(t *testing.T) {
	proc := t.TempDir()
	stat := func(pid, ppid string, utime, stime, cutime, cstime string) {
		dir := filepath.Join(proc, pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		line := pid + " (postgres) S " + ppid + " 1 1 0 -1 0 0 0 0 0 " + utime + " " + stime + " " + cutime + " " + cstime + " 20 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat("10", "1", "100", "50", "30", "20") // the postmaster: 200 ticks with its reaped children
	stat("11", "10", "7", "3", "1000", "0")  // a backend: 10 (its own children are not the server's)
	stat("12", "10", "5", "0", "0", "0")     // another: 5
	stat("13", "1", "999", "999", "0", "0")  // someone else's
	if err := os.Mkdir(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := processTreeCPU(proc, 10), 215*(time.Second/100); got != want {
		t.Errorf("processTreeCPU = %s, want %s", got, want)
	}
	if got := processTreeCPU(proc, 99); got != -1 {
		t.Errorf("processTreeCPU of a missing process = %s, want -1", got)
	}
}

func TestRoundRatios(t *testing.T) {
	runs := func(cpus ...time.Duration) []*result {
		var rs []*result
		for _, cpu := range cpus {
			rs = append(rs, &result{requests: 1000, cpu: 1000 * cpu * time.Microsecond})
		}
		return rs
	}
	tests := []struct {
		name              string
		reference, target []*result
		lo, median, hi    float64
	}{
		{"odd", runs(40, 50, 40), runs(42, 45, 44), 0.9, 1.05, 1.1},
		{"even", runs(40, 50, 40, 10), runs(42, 45, 44, 20), 0.9, 1.075, 2},
		{"one", runs(40), runs(42), 1.05, 1.05, 1.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, median, hi := roundRatios(tt.reference, tt.target)
			if math.Abs(lo-tt.lo) > 1e-9 || math.Abs(median-tt.median) > 1e-9 || math.Abs(hi-tt.hi) > 1e-9 {
				t.Errorf("roundRatios = %v, %v, %v; want %v, %v, %v", lo, median, hi, tt.lo, tt.median, tt.hi)
			}
		})
	}
}
