package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/pgdb"
)

// Fleet is a drift.Fleet in PostgreSQL: the replicas' window snapshots in
// drift_windows, the leader's reports and the alerts' outbox in
// drift_reports, whose key on (monitor, window start) makes each judgement
// a claim that one replica wins. It needs the tables of Schema and does not
// own its pool. The times it stores are the callers' (their clocks), but
// for an alert's delivered_at, the database's.
type Fleet struct {
	pool *pgxpool.Pool
}

var _ drift.Fleet = (*Fleet)(nil)

// NewFleet returns a Fleet in the database of pool, which pgdb.Migrate has
// brought to Schema.
func NewFleet(pool *pgxpool.Pool) *Fleet { return &Fleet{pool: pool} }

// PublishWindows implements drift.Fleet, in one round trip.
func (f *Fleet) PublishWindows(ctx context.Context, snaps []drift.WindowSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, s := range snaps {
		raw, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("encode window of monitor %s: %w", s.Monitor, err)
		}
		b.Queue(`INSERT INTO drift_windows (monitor, window_start, replica, model_uuid, window_end, snapshot, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (monitor, window_start, replica, model_uuid) DO UPDATE
			SET window_end = EXCLUDED.window_end, snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at`,
			s.Monitor, s.Start, s.Replica, s.Model.UUID, s.End, raw, s.Taken)
	}
	if err := f.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("publish %d drift windows: %w", len(snaps), err)
	}
	return nil
}

// Windows implements drift.Fleet.
func (f *Fleet) Windows(ctx context.Context, monitor string, start time.Time) ([]drift.WindowSnapshot, error) {
	out, err := pgdb.Documents[drift.WindowSnapshot](ctx, f.pool, "window of replica",
		`SELECT replica, snapshot FROM drift_windows WHERE monitor = $1 AND window_start = $2 ORDER BY replica, model_uuid`, monitor, start)
	if err != nil {
		return nil, fmt.Errorf("read windows of monitor %s at %v: %w", monitor, start, err)
	}
	return out, nil
}

// Unjudged implements drift.Fleet.
func (f *Fleet) Unjudged(ctx context.Context, endedBy time.Time) ([]drift.WindowKey, error) {
	rows, err := f.pool.Query(ctx, `SELECT w.monitor, w.window_start, max(w.window_end)
		FROM drift_windows w
		WHERE NOT w.judged
		AND NOT EXISTS (SELECT 1 FROM drift_reports r WHERE r.monitor = w.monitor AND r.window_start = w.window_start)
		GROUP BY w.monitor, w.window_start
		HAVING max(w.window_end) <= $1
		ORDER BY w.window_start, w.monitor`, endedBy)
	if err != nil {
		return nil, fmt.Errorf("list windows to judge: %w", err)
	}
	out := []drift.WindowKey{}
	var k drift.WindowKey
	if _, err := pgx.ForEachRow(rows, []any{&k.Monitor, &k.Start, &k.End}, func() error {
		out = append(out, drift.WindowKey{Monitor: k.Monitor, Start: k.Start.UTC(), End: k.End.UTC()})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list windows to judge: %w", err)
	}
	return out, nil
}

// ClaimReport implements drift.Fleet: an INSERT that does nothing on a
// conflict over the window, and that marks the window's snapshots judged
// when it claims.
func (f *Fleet) ClaimReport(ctx context.Context, monitor string, report drift.WindowReport, alert *drift.PendingAlert) (bool, error) {
	raw, err := json.Marshal(report)
	if err != nil {
		return false, fmt.Errorf("encode report of monitor %s: %w", monitor, err)
	}
	var alertID *string
	var alertRaw []byte
	if alert != nil {
		alertID = &alert.ID
		if alertRaw, err = json.Marshal(alert.Alert); err != nil {
			return false, fmt.Errorf("encode alert of monitor %s: %w", monitor, err)
		}
	}
	var claimed int
	err = f.pool.QueryRow(ctx, `WITH claimed AS (
			INSERT INTO drift_reports (monitor, window_start, window_end, report, alert_id, alert)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (monitor, window_start) DO NOTHING
			RETURNING 1
		), marked AS (
			UPDATE drift_windows SET judged = true
			WHERE monitor = $1 AND window_start = $2 AND EXISTS (SELECT 1 FROM claimed)
		)
		SELECT count(*) FROM claimed`, monitor, report.Start, report.End, raw, alertID, alertRaw).Scan(&claimed)
	if err != nil {
		return false, fmt.Errorf("record report of monitor %s at %v: %w", monitor, report.Start, err)
	}
	return claimed == 1, nil
}

// Reports implements drift.Fleet.
func (f *Fleet) Reports(ctx context.Context, monitor string, limit int) ([]drift.WindowReport, error) {
	out, err := pgdb.Documents[drift.WindowReport](ctx, f.pool, "report of monitor",
		`SELECT monitor, report FROM (
			SELECT monitor, window_start, report FROM drift_reports WHERE monitor = $1 ORDER BY window_start DESC LIMIT $2
		) last ORDER BY window_start`, monitor, limit)
	if err != nil {
		return nil, fmt.Errorf("read reports of monitor %s: %w", monitor, err)
	}
	return out, nil
}

// LastAlert implements drift.Fleet.
func (f *Fleet) LastAlert(ctx context.Context, monitor string) (time.Time, error) {
	var last *time.Time
	if err := f.pool.QueryRow(ctx, `SELECT max(window_end) FROM drift_reports WHERE monitor = $1 AND alert IS NOT NULL`, monitor).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("read last alert of monitor %s: %w", monitor, err)
	}
	if last == nil {
		return time.Time{}, nil
	}
	return last.UTC(), nil
}

// PendingAlerts implements drift.Fleet.
func (f *Fleet) PendingAlerts(ctx context.Context) ([]drift.PendingAlert, error) {
	rows, err := f.pool.Query(ctx, `SELECT alert_id, monitor, alert FROM drift_reports
		WHERE alert IS NOT NULL AND delivered_at IS NULL ORDER BY window_start, monitor`)
	if err != nil {
		return nil, fmt.Errorf("read pending alerts: %w", err)
	}
	out := []drift.PendingAlert{}
	var (
		p   drift.PendingAlert
		raw []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&p.ID, &p.Monitor, &raw}, func() error {
		a := drift.PendingAlert{ID: p.ID, Monitor: p.Monitor}
		if err := json.Unmarshal(raw, &a.Alert); err != nil {
			return fmt.Errorf("decode alert %s of monitor %s: %w", p.ID, p.Monitor, err)
		}
		out = append(out, a)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read pending alerts: %w", err)
	}
	return out, nil
}

// AlertDelivered implements drift.Fleet.
func (f *Fleet) AlertDelivered(ctx context.Context, id string) error {
	if _, err := f.pool.Exec(ctx, `UPDATE drift_reports SET delivered_at = now() WHERE alert_id = $1 AND delivered_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark alert %s delivered: %w", id, err)
	}
	return nil
}

// Prune implements drift.Fleet.
func (f *Fleet) Prune(ctx context.Context, windowsBefore, reportsBefore time.Time) error {
	if _, err := f.pool.Exec(ctx, `DELETE FROM drift_windows WHERE window_end < $1`, windowsBefore); err != nil {
		return fmt.Errorf("prune drift windows: %w", err)
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM drift_reports WHERE window_end < $1`, reportsBefore); err != nil {
		return fmt.Errorf("prune drift reports: %w", err)
	}
	return nil
}
