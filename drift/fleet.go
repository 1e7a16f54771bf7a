package drift

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"time"
)

// Fleet is the state that the replicas of a fleet share for their drift
// monitors (drift/postgres keeps it in PostgreSQL): each replica's
// snapshots of its monitors' windows, the leader's reports of the windows
// it judged, and the outbox of the alerts whose webhook call is not yet
// delivered. Implementations must be safe for concurrent use; every error
// is the store's, wrapped with what was being done.
type Fleet interface {
	// PublishWindows saves snapshots, each replacing the one of the same
	// replica, monitor, window start and model version (Model.UUID).
	PublishWindows(ctx context.Context, snaps []WindowSnapshot) error
	// Windows returns every replica's snapshots of the window of monitor
	// that starts at start, of every model version, ordered by replica;
	// none is not an error.
	Windows(ctx context.Context, monitor string, start time.Time) ([]WindowSnapshot, error)
	// Unjudged returns the windows that have at least one snapshot and no
	// report, and that ended at or before endedBy, oldest first.
	Unjudged(ctx context.Context, endedBy time.Time) ([]WindowKey, error)
	// ClaimReport records report as the judgement of the window of monitor
	// that starts at report.Start, with alert, if not nil, pending delivery,
	// and returns true; unless that window already has a report: then it
	// records nothing and returns false, and the caller must not alert.
	ClaimReport(ctx context.Context, monitor string, report WindowReport, alert *PendingAlert) (bool, error)
	// Reports returns the last limit reports of monitor, oldest first.
	Reports(ctx context.Context, monitor string, limit int) ([]WindowReport, error)
	// LastAlert returns the end of the last window of monitor that raised
	// an alert, or the zero time when none did.
	LastAlert(ctx context.Context, monitor string) (time.Time, error)
	// PendingAlerts returns the alerts claimed and not yet marked
	// delivered, oldest window first.
	PendingAlerts(ctx context.Context) ([]PendingAlert, error)
	// AlertDelivered marks the alert of delivery id delivered (or with
	// nothing to deliver to): it is no longer pending. An unknown id is
	// not an error.
	AlertDelivered(ctx context.Context, id string) error
	// Prune deletes the snapshots of windows that ended before
	// windowsBefore and the reports of windows that ended before
	// reportsBefore.
	Prune(ctx context.Context, windowsBefore, reportsBefore time.Time) error
}

// WindowKey names a window of a monitor.
type WindowKey struct {
	Monitor string
	Start   time.Time
	End     time.Time
}

// PendingAlert is an alert that the leader claimed, kept by the fleet until
// its webhook call is delivered. ID is its delivery id, the
// X-Mlgate-Delivery of every attempt and of every leader's.
type PendingAlert struct {
	ID      string `json:"id"`
	Monitor string `json:"monitor"`
	Alert   Alert  `json:"alert"`
}

// Fleet timing. Each replica publishes its windows' snapshots every
// FleetPublishInterval (at most; its loop's tick sets how often it can),
// and a window's final snapshot on the first tick after the window ends.
// The leader judges a window FleetGrace after it ended, so that every
// replica's final snapshot is in. Snapshots are kept FleetWindowRetention
// after their window ended, reports FleetReportRetention; the leader prunes
// older ones every fleetPruneEvery. A tick's calls of the fleet together
// take at most fleetTickTimeout, so that a database that hangs holds back
// the tick, not the loop.
const (
	FleetPublishInterval = time.Second
	FleetGrace           = 2 * FleetPublishInterval
	FleetWindowRetention = 24 * time.Hour
	FleetReportRetention = 30 * 24 * time.Hour
	fleetPruneEvery      = time.Hour
	fleetTickTimeout     = 10 * time.Second
)

// WithFleet makes the service replica replica of a fleet that shares its
// monitors' windows through f. Then the monitors' windows open on the
// clock's multiples of their length (see AlignWindow), so that every
// replica's windows are the same. Each replica counts what it serves and
// publishes its windows' snapshots every FleetPublishInterval, a window's
// final one as the window ends, but judges none: the leader (see
// WithLeader) judges each window FleetGrace after its end on the merge of
// every replica's snapshots of it, and records the report once in f; only
// then does it call the AlertHook and the webhook, through f's outbox.
// The cooldown runs from the last alert f recorded, whichever replica led.
// The monitors' reports show f's history and the fleet's counts of the
// current window.
func WithFleet(f Fleet, replica string) ServiceOption {
	return func(s *Service) { s.fleet, s.replica = f, replica }
}

// WithLeader tells a service with a fleet whether its replica leads the
// fleet now (holds the leader's lock). isLeader is called on every tick
// and must not block. Without WithLeader the replica leads. A replica that
// becomes the leader sends again the alerts the fleet holds undelivered.
func WithLeader(isLeader func() bool) ServiceOption {
	return func(s *Service) { s.isLeader = isLeader }
}

// fleetState is the fleet loop's state.
type fleetState struct {
	mu          sync.Mutex // one fleet tick at a time; guards the fields below
	lastPublish time.Time
	finals      []WindowSnapshot // closed windows not yet published
	leading     bool
	lastPrune   time.Time
	failing     map[string]string // what failed → its last error logged

	inflightMu sync.Mutex
	inflight   map[string]bool // delivery ids queued on the notifier
}

// fleetTick is Tick in fleet mode.
func (s *Service) fleetTick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, fleetTickTimeout)
	defer cancel()
	f := &s.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	now := s.clock.Now()
	monitors := s.List()
	// Final counts that could not be published for longer than the fleet
	// keeps windows would be pruned at once: they go.
	f.finals = slices.DeleteFunc(f.finals, func(w WindowSnapshot) bool { return w.End.Before(now.Add(-FleetWindowRetention)) })
	for _, m := range monitors {
		if snap, ok := m.roll(now); ok {
			snap.Replica, snap.Taken = s.replica, now
			f.finals = append(f.finals, snap)
		}
	}
	if len(f.finals) > 0 || !now.Before(f.lastPublish.Add(FleetPublishInterval)) {
		if s.publishWindows(ctx, now, monitors) {
			f.lastPublish = now
			s.refreshViews(ctx, monitors)
		}
	}
	if s.isLeader != nil && !s.isLeader() {
		f.leading = false
		return
	}
	if !f.leading {
		f.leading = s.resendPending(ctx)
	}
	if len(f.finals) == 0 { // this replica's own counts are all in
		s.judgeDue(ctx, now)
	}
	if now.Sub(f.lastPrune) >= fleetPruneEvery {
		err := s.fleet.Prune(ctx, now.Add(-FleetWindowRetention), now.Add(-FleetReportRetention))
		if s.failed("prune", err) {
			f.lastPrune = now
		}
	}
}

// failed logs err, unless it is the error last logged for what, and
// returns whether err is nil; a success after a failure is logged too. The
// caller holds s.fs.mu.
func (s *Service) failed(what string, err error) bool {
	f := &s.fs
	last, was := f.failing[what]
	if err == nil {
		if was {
			delete(f.failing, what)
			s.log.Info("drift fleet: "+what+" works again", "replica", s.replica)
		}
		return true
	}
	if !was || last != err.Error() {
		if f.failing == nil {
			f.failing = map[string]string{}
		}
		f.failing[what] = err.Error()
		s.log.Error("drift fleet: "+what+" failed; retrying", "replica", s.replica, "err", err)
	}
	return false
}

// publishWindows publishes the final snapshots of the windows closed and
// not yet published, and the current window's of every running monitor.
// It returns whether they were published.
func (s *Service) publishWindows(ctx context.Context, now time.Time, monitors []*Monitor) bool {
	f := &s.fs
	snaps := make([]WindowSnapshot, 0, len(f.finals)+len(monitors))
	snaps = append(snaps, f.finals...)
	for _, m := range monitors {
		if snap, ok := m.Snapshot(); ok {
			snap.Replica, snap.Taken = s.replica, now
			snaps = append(snaps, snap)
		}
	}
	if !s.failed("publish windows", s.fleet.PublishWindows(ctx, snaps)) {
		return false
	}
	f.finals = nil
	return true
}

// refreshViews reads from the fleet, for each running monitor, the other
// replicas' snapshots of its current window, and its reports and last
// alert while the report of its previous window is not in.
func (s *Service) refreshViews(ctx context.Context, monitors []*Monitor) {
	for _, m := range monitors {
		w := m.cur.Load()
		if w == nil || !m.aligned {
			continue
		}
		name := m.spec.Name
		others, err := s.fleet.Windows(ctx, name, w.start)
		if !s.failed("read windows", err) {
			continue
		}
		view := &fleetView{replica: s.replica, others: others}
		old := m.fleet.Load()
		prev := w.start.Add(-time.Duration(m.spec.Window))
		if old != nil && len(old.history) > 0 && !old.history[len(old.history)-1].Start.Before(prev) {
			view.history, view.lastAlert = old.history, old.lastAlert
		} else {
			history, err := s.fleet.Reports(ctx, name, HistoryLen)
			if !s.failed("read reports", err) {
				continue
			}
			last, err := s.fleet.LastAlert(ctx, name)
			if !s.failed("read last alert", err) {
				continue
			}
			view.history, view.lastAlert = history, last
		}
		m.fleet.Store(view)
	}
}

// judgeDue judges, on the leader, every window of a running monitor that
// ended FleetGrace ago or earlier and has no report yet.
func (s *Service) judgeDue(ctx context.Context, now time.Time) {
	due, err := s.fleet.Unjudged(ctx, now.Add(-FleetGrace))
	if !s.failed("list windows to judge", err) {
		return
	}
	for _, k := range due {
		m, ok := s.set.Load().byName[k.Monitor]
		if !ok || m.err != nil || !m.aligned {
			continue // judged once it runs, or pruned
		}
		s.judge(ctx, m, k)
	}
}

// judge judges window k of m on the merge of the replicas' snapshots that
// fit m (a snapshot of another model version is left out), claims the
// report and, when it drifted and the fleet's last alert is at least
// Cooldown before the window's end, its alert; then it raises the alert.
func (s *Service) judge(ctx context.Context, m *Monitor, k WindowKey) {
	snaps, err := s.fleet.Windows(ctx, k.Monitor, k.Start)
	if !s.failed("read windows", err) {
		return
	}
	fit := snaps[:0]
	for _, snap := range snaps {
		if err := m.fits(snap, k.Start); err != nil {
			if snap.Model.UUID == m.model.UUID {
				s.log.Warn("drift fleet: window snapshot left out", "monitor", k.Monitor, "window_start", k.Start, "err", err)
			}
			continue
		}
		fit = append(fit, snap)
	}
	rep, err := m.JudgeWindow(k.Start, k.End, fit)
	if err != nil {
		s.log.Error("drift fleet: window not judged", "monitor", k.Monitor, "window_start", k.Start, "err", err)
		return
	}
	spec := m.Spec()
	var pending *PendingAlert
	if rep.Drifted {
		last, err := s.fleet.LastAlert(ctx, spec.Name)
		if !s.failed("read last alert", err) {
			return
		}
		if last.IsZero() || !rep.End.Before(last.Add(time.Duration(spec.Cooldown))) {
			rep.Alerted = true
			pending = &PendingAlert{ID: rand.Text(), Monitor: spec.Name, Alert: *m.alert(rep)}
		}
	}
	claimed, err := s.fleet.ClaimReport(ctx, spec.Name, *rep, pending)
	if !s.failed("record report", err) || !claimed || pending == nil {
		return
	}
	s.log.Warn("drift detected", "monitor", spec.Name, "drifted", len(pending.Alert.Drifted), "window_start", rep.Start, "window_end", rep.End, "samples", rep.Samples)
	if s.onAlert != nil {
		s.onAlert(ctx, spec, &pending.Alert)
	}
	s.deliver(ctx, spec, *pending)
}

// resendPending sends again, on a replica that has just become the
// leader, the alerts the fleet holds undelivered. It returns false when it
// could not read them, to try again on the next tick.
func (s *Service) resendPending(ctx context.Context) bool {
	pending, err := s.fleet.PendingAlerts(ctx)
	if !s.failed("read pending alerts", err) {
		return false
	}
	for _, p := range pending {
		m, ok := s.set.Load().byName[p.Monitor]
		if !ok {
			s.log.Warn("drift alert dropped: its monitor is gone", "monitor", p.Monitor, "delivery", p.ID)
			s.settle(ctx, p.ID)
			continue
		}
		s.log.Info("drift alert sent again by the new leader", "monitor", p.Monitor, "delivery", p.ID)
		s.deliver(ctx, m.Spec(), p)
	}
	return true
}

// deliver hands a claimed alert to the notifier, which marks it delivered
// in the fleet once the webhook took it. An alert whose monitor has no
// webhook is marked delivered at once; one already queued here is left to
// that delivery.
func (s *Service) deliver(ctx context.Context, spec MonitorSpec, p PendingAlert) {
	if spec.Webhook.URL == "" {
		s.settle(ctx, p.ID)
		return
	}
	f := &s.fs
	f.inflightMu.Lock()
	if f.inflight[p.ID] {
		f.inflightMu.Unlock()
		return
	}
	if f.inflight == nil {
		f.inflight = map[string]bool{}
	}
	f.inflight[p.ID] = true
	f.inflightMu.Unlock()
	done := func(err error) {
		f.inflightMu.Lock()
		delete(f.inflight, p.ID)
		f.inflightMu.Unlock()
		if err != nil {
			s.log.Error("drift alert not delivered; the next leader sends it again", "monitor", spec.Name, "delivery", p.ID, "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.settle(ctx, p.ID)
	}
	if err := s.notifier.NotifyDelivery(spec.Webhook, &p.Alert, p.ID, done); err != nil {
		f.inflightMu.Lock()
		delete(f.inflight, p.ID)
		f.inflightMu.Unlock()
		s.log.Error("drift alert not sent; the next leader sends it again", "monitor", spec.Name, "delivery", p.ID, "err", err)
	}
}

// settle marks an alert delivered in the fleet.
func (s *Service) settle(ctx context.Context, id string) {
	if err := s.fleet.AlertDelivered(ctx, id); err != nil {
		s.log.Error("drift alert delivered, but not marked so; a new leader may send it again", "delivery", id, "err", err)
	}
}
