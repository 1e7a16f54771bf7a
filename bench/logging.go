package main

// The logging scenario: what recording every prediction in the inference
// table costs. Two mlgates in this process, each with its own data directory
// and the modelzoo's linear model registered through the API, answer the
// same request, POST /v1/models/linear/predict: "tables-off" with
// inference_tables.enabled false (the reference), "tables-on" with the
// inference tables on and their default settings. After the load, every
// request tables-on answered must be a row of its table: the bench reads the
// writer's counters from GET /v1/tables, shuts the gateway down (which writes
// every accepted row) and counts the rows in the Parquet files' metadata.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/tables"
)

const (
	// loggingGoal: logging every request costs at most 5% of throughput
	// (issue 11).
	loggingGoal = 0.95
	// loggingDrain bounds how long the bench waits, after each tables-on
	// round, for the writer to take the rows queued or spilled during it.
	loggingDrain = 5 * time.Minute
)

// tablesListing is the answer of GET /v1/tables.
type tablesListing struct {
	Files  []tables.File `json:"files"`
	Writer tables.Stats  `json:"writer"`
}

func startLogging(cfg options) (*scenario, error) {
	path := modelzoo.Path(modelzoo.Linear)
	off, err := startLinearGatewayWith(path, func(c *config.Config) { c.Tables.Enabled = false })
	if err != nil {
		return nil, fmt.Errorf("start mlgate with the tables off: %w", err)
	}
	// The default settings, with the tables on whatever the default.
	on, err := startLinearGatewayWith(path, func(c *config.Config) { c.Tables.Enabled = true })
	if err != nil {
		off.close()
		return nil, fmt.Errorf("start mlgate with the tables on: %w", err)
	}
	closeBoth := func() { on.close(); off.close() }
	body := []byte("{" + rawInputs + "}")
	if err := checkTablesAPI(off.addr, false); err != nil {
		closeBoth()
		return nil, err
	}
	if err := checkTablesAPI(on.addr, true); err != nil {
		closeBoth()
		return nil, err
	}
	for _, s := range []*server{off, on} {
		if _, err := checkPredictAnswer(s.addr, modelPredict, body); err != nil {
			closeBoth()
			return nil, fmt.Errorf("model-predict answers wrongly, not benchmarking it: %w", err)
		}
	}
	const checks = 1 // requests tables-on answered before the load

	d := config.Defaults().Tables
	sc := &scenario{
		name:    "logging",
		heading: fmt.Sprintf("logging: %d workers, inference tables on against off", cfg.concurrency),
		bullets: []string{
			"Targets: two mlgates in this process, each with its own data directory and `linear.onnx` registered through the API; **tables-off** has `inference_tables.enabled: false`, **tables-on** the inference tables on with the default settings " +
				fmt.Sprintf("(max_file_bytes %d MiB, max_file_age %s, flush_interval %s, queue_size %d, spill %t)", int64(d.MaxFileBytes)>>20, time.Duration(d.MaxFileAge), time.Duration(d.FlushInterval), d.QueueSize, d.Spill) +
				"; both are sent `POST " + modelPredict + "` with `{" + rawInputs + "}`",
			"Checked before the load: `GET /v1/tables` answers 503 from tables-off and 200 with no file from tables-on; both answered `{\"y\": [[4, 10]]}` from linear version 1",
		},
		targets: []*target{{name: "tables-off", srv: off}, {name: "tables-on", srv: on}},
		load:    load{path: modelPredict, bodies: [][]byte{body}, warmup: cfg.warmup, measure: cfg.duration},
		phases:  []*phase{{workers: cfg.concurrency, minRatio: loggingGoal}},
		close:   closeBoth,
	}
	answered := func() int {
		n := checks
		for _, r := range sc.phases[0].runs[1] {
			n += r.answered
		}
		return n
	}
	var rounds []string
	sc.afterRound = func(t *target) error {
		if t.srv != on {
			return nil
		}
		_, live, err := getTables(on.addr)
		if err != nil {
			return fmt.Errorf("logging: GET /v1/tables: %w", err)
		}
		// Let the writer take what the round queued or spilled, so that it
		// does not run into the next round (the reference's).
		ctx, cancel := context.WithTimeout(context.Background(), loggingDrain)
		defer cancel()
		start := time.Now()
		if err := on.gateway.Server.FlushRecords(ctx); err != nil {
			return fmt.Errorf("logging: flush the tables-on writer after a round: %w", err)
		}
		w, sent := live.Writer, answered()
		rounds = append(rounds, fmt.Sprintf("round %d: answered %d so far, written %d, so %d queued or in open files; spilled %d, dropped %d, failed %d; Flush took %s",
			len(sc.phases[0].runs[1]), sent, w.Written, int64(sent)-w.Written, w.Spilled, w.Dropped, w.Failed, fmtLatency(time.Since(start))))
		return nil
	}
	sc.after = func() error {
		sc.notes = append(sc.notes, "tables-on writer counters from `GET /v1/tables` at the end of each round, before the bench called `Writer.Flush` (outside the measured period) so that rows the round left queued or spilled are not written during the next one: "+strings.Join(rounds, "; "))
		return checkRecorded(sc, on, answered())
	}
	return sc, nil
}

// checkTablesAPI checks that GET /v1/tables answers 200 with no file when
// the tables are on, 503 when they are off.
func checkTablesAPI(addr string, on bool) error {
	status, listing, err := getTables(addr)
	switch {
	case err != nil:
		return err
	case on && (status != http.StatusOK || len(listing.Files) != 0):
		return fmt.Errorf("tables-on: GET /v1/tables answered %d with %d files, want 200 and none", status, len(listing.Files))
	case !on && status != http.StatusServiceUnavailable:
		return fmt.Errorf("tables-off: GET /v1/tables answered %d, want 503 (tables off)", status)
	}
	return nil
}

func getTables(addr string) (int, *tablesListing, error) {
	resp, err := http.Get("http://" + addr + "/v1/tables")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var listing tablesListing
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &listing); err != nil {
			return 0, nil, fmt.Errorf("GET /v1/tables: %w: %s", err, raw)
		}
	}
	return resp.StatusCode, &listing, nil
}

// checkRecorded reads the tables-on writer's counters through the API, shuts
// the gateway down, counts the rows of its inference table in the Parquet
// metadata, and adds what it found to the report's notes. It fails unless
// every answered request is one row and the writer dropped or failed none.
func checkRecorded(sc *scenario, on *server, answered int) error {
	_, live, err := getTables(on.addr)
	if err != nil {
		return fmt.Errorf("logging: GET /v1/tables: %w", err)
	}
	w := live.Writer
	var liveRows int64
	for _, f := range live.Files {
		liveRows += f.Rows
	}
	sc.notes = append(sc.notes, fmt.Sprintf("tables-on writer after the load (`GET /v1/tables`, before Shutdown): written %d (in %d complete files, %d rows), spilled %d, dropped %d, failed %d, skipped %d; requests answered %d",
		w.Written, len(live.Files), liveRows, w.Spilled, w.Dropped, w.Failed, w.Skipped, answered))

	start := time.Now()
	if err := on.shutdown(); err != nil {
		return fmt.Errorf("logging: shut the tables-on gateway down: %w", err)
	}
	took := time.Since(start)
	files, err := tables.List(filepath.Join(on.dataDir, "inference"))
	if err != nil {
		return fmt.Errorf("logging: list the tables-on inference table: %w", err)
	}
	var rows, bytes int64
	n := 0
	for _, f := range files {
		if f.Table == tables.TableInference {
			rows += f.Rows
			bytes += f.Bytes
			n++
		}
	}
	final := on.gateway.Tables.Stats()
	perRow := 0.0
	if rows > 0 {
		perRow = float64(bytes) / float64(rows)
	}
	sc.notes = append(sc.notes, fmt.Sprintf("After `gateway.Shutdown` (%s): `tables.List` counts **%d rows** in %d Parquet files (%.1f MiB, %.1f bytes/row); writer written %d, dropped %d, failed %d. "+
		"**Rows recorded / requests answered: %d / %d = %.4f** (answered: every 200 of tables-on, warm-ups and the check included).",
		fmtLatency(took), rows, n, float64(bytes)/(1<<20), perRow, final.Written, final.Dropped, final.Failed, rows, answered, float64(rows)/float64(answered)))

	var errs []error
	if rows != int64(answered) {
		errs = append(errs, fmt.Errorf("logging: %d rows recorded for %d requests answered", rows, answered))
	}
	if final.Dropped != 0 || final.Failed != 0 {
		errs = append(errs, fmt.Errorf("logging: the writer dropped %d rows and failed %d", final.Dropped, final.Failed))
	}
	return errors.Join(errs...)
}
