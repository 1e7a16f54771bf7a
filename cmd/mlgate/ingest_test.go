package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore/cassandra"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/testservers"
)

const ingestRows = 100000

// writeCSV writes n rows for view "v": user_id u0..u{n-1}, age, visits, city.
// The row at badLine (a file line, the header being line 1) gets an age
// that is not a number; 0 for none.
func writeCSV(t *testing.T, n, badLine int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rows.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "user_id,age,visits,city,event_ts")
	for i := range n {
		age := fmt.Sprint(float32(i%90) + 0.5)
		if i+2 == badLine {
			age = "forty"
		}
		fmt.Fprintf(w, "u%d,%s,%d,city-%d,2026-11-21T10:00:00Z\n", i, age, i, i%97)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// startIngestGateway starts a gateway with every store the environment has.
func startIngestGateway(t *testing.T, stores []string) *gateway.Gateway {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.OnlineStore.CacheEntries = 0
	// The rows are read back 10,000 at a time: more than the default read
	// timeout, meant for one request's entities, allows a busy node.
	cfg.OnlineStore.Timeout = config.Duration(time.Minute)
	cfg.OnlineStore.Breaker.Window = config.Duration(2 * time.Minute)
	for _, s := range stores {
		switch s {
		case "redis":
			cfg.OnlineStore.Redis.Addr = testservers.Redis(t)[0]
			cfg.OnlineStore.Redis.KeyPrefix = fmt.Sprintf("ingesttest%d", time.Now().UnixNano())
		case "cassandra":
			cfg.OnlineStore.Cassandra.Hosts = testservers.Cassandra(t)
			cfg.OnlineStore.Cassandra.Keyspace = fmt.Sprintf("ingesttest%d", time.Now().UnixNano())
			t.Cleanup(func() { dropKeyspace(t, cfg.OnlineStore.Cassandra) })
		}
	}
	g, err := gateway.Start(t.Context(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	return g
}

// TestIngest100k ingests a 100,000-row CSV into a view held in each store
// through the CLI and reads every row back; then it ingests a file with a
// malformed row and checks the report and what was written.
func TestIngest100k(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests 100,000 rows per store")
	}
	for _, store := range []string{"embedded", "redis", "cassandra"} {
		t.Run(store, func(t *testing.T) {
			g := startIngestGateway(t, []string{store})
			server := "http://" + g.Addr
			views := filepath.Join(t.TempDir(), "views.yaml")
			os.WriteFile(views, []byte(`views:
  - name: users
    entities: [user_id]
    features:
      - {name: age, type: float}
      - {name: visits, type: int}
      - {name: city, type: string}
    store: `+store+`
  - name: broken
    entities: [user_id]
    features: [{name: age, type: float}, {name: visits, type: int}, {name: city, type: string}]
    store: `+store+`
`), 0o600)
			var out bytes.Buffer
			stdout, stderr = &out, &out
			defer func() { stdout, stderr = os.Stdout, os.Stderr }()
			if err := run([]string{"features", "apply", "-f", views, "--server", server}); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if err := run([]string{"features", "ingest", "--view", "users", "--file", writeCSV(t, ingestRows, 0), "--batch", "5000", "--server", server}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", store, strings.TrimSpace(out.String()))
			t.Logf("%s: ingest of %d rows took %s", store, ingestRows, time.Since(start).Round(time.Millisecond))
			if n := countPresent(t, g, "users", 0, ingestRows, true); n != ingestRows {
				t.Fatalf("%d of %d rows read back", n, ingestRows)
			}

			// A malformed row on line 50,001: the batches before it are
			// written whole, nothing after it is sent, and the report says so.
			const badLine, batch = 50001, 5000
			err := run([]string{"features", "ingest", "--view", "broken", "--file", writeCSV(t, ingestRows, badLine), "--batch", fmt.Sprint(batch), "--server", server})
			if err == nil || !strings.Contains(err.Error(), `line 50001, column "age"`) {
				t.Fatalf("malformed row: err = %v", err)
			}
			written := (badLine - 2) / batch * batch // rows in the complete batches before the bad row
			if !strings.Contains(err.Error(), fmt.Sprintf("%d rows were written before it", written)) {
				t.Errorf("the report does not say how many rows were written: %v", err)
			}
			if n := countPresent(t, g, "broken", 0, written, false); n != written {
				t.Errorf("%d of the %d rows before the failed batch read back", n, written)
			}
			if n := countPresent(t, g, "broken", written, ingestRows, false); n != 0 {
				t.Errorf("%d rows after the failed batch were written", n)
			}
		})
	}
}

// countPresent reads users u{from}..u{to-1} of a view through the feature
// store and counts those found; with check, it also checks their values.
func countPresent(t *testing.T, g *gateway.Gateway, view string, from, to int, check bool) int {
	t.Helper()
	found := 0
	for lo := from; lo < to; lo += 10000 {
		hi := min(lo+10000, to)
		ids := make([]string, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ids = append(ids, fmt.Sprint("u", i))
		}
		res, err := g.Features.Online(t.Context(), []string{view + ":age", view + ":visits", view + ":city"}, map[string][]string{"user_id": ids})
		if err != nil {
			t.Fatal(err)
		}
		for k, row := range res.Rows {
			if row.Statuses[0] == "NOT_FOUND" {
				continue
			}
			found++
			i := lo + k
			if check && (row.Values[0].Num != float64(float32(i%90)+0.5) || row.Values[1].Int != int64(i) || row.Values[2].Str != fmt.Sprint("city-", i%97)) {
				t.Fatalf("row u%d read back as %+v", i, row.Values)
			}
		}
	}
	return found
}

// dropKeyspace removes a test's keyspace from the shared test server.
func dropKeyspace(t *testing.T, c config.Cassandra) {
	s, err := cassandra.New(context.Background(), cassandra.Options{Hosts: c.Hosts, Keyspace: c.Keyspace})
	if err == nil {
		err = s.DropKeyspace(context.Background())
		s.Close()
	}
	if err != nil {
		t.Error(err)
	}
}
