package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/router/postgres"
)

// statsOf returns the Stats of a new route of revision rev of endpoint
// name, a 90/10 split.
func statsOf(t *testing.T, name string, rev int) *router.Stats {
	t.Helper()
	r, err := router.NewRoute(router.Endpoint{Name: name, Revision: rev, Salt: name, Policy: router.Policy{Variants: []router.Variant{
		{Name: "control", Model: "churn/1", Weight: 90}, {Name: "treatment", Model: "churn/2", Weight: 10},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Stats()
}

// TestFleet_FiguresAreTheSum: two replicas, each with its own pool as two
// gateways have, publish their figures of one revision; each reads both
// back as published, and merged they are the figures of one Stats that
// counted every request.
func TestFleet_FiguresAreTheSum(t *testing.T) {
	ctx := context.Background()
	dsn := testservers.Postgres(t)
	fleets := []*postgres.Fleet{postgres.NewFleet(pgdbtest.Open(t, dsn, postgres.Schema)), postgres.NewFleet(pgdbtest.Open(t, dsn, postgres.Schema))}
	all := statsOf(t, "churn", 3)
	parts := []*router.Stats{statsOf(t, "churn", 3), statsOf(t, "churn", 3)}
	for i := range 500 {
		variant := 0
		if i%7 == 0 {
			variant = 1
		}
		latency := time.Duration(1+i%90) * 300 * time.Microsecond
		for _, st := range []*router.Stats{all, parts[i%3%2]} {
			st.Record(variant, latency, i%23 == 0)
			st.RecordPrediction(variant, float64(i%8)/4)
			if i%5 == 0 {
				st.RecordShadow(i%10 == 0)
			}
		}
	}
	published := map[string]router.StatsSnapshot{}
	for i, f := range fleets {
		id := fmt.Sprintf("r%d", i+1)
		published[id] = parts[i].Snapshot()
		other := statsOf(t, "fraud", 1).Snapshot()
		if err := f.Publish(ctx, id, []router.EndpointFigures{{Endpoint: "churn", Revision: 3, Stats: published[id]}, {Endpoint: "fraud", Revision: 1, Stats: other}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fleets {
		got, err := f.Figures(ctx, "churn", 3)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, published) {
			t.Errorf("replica %d reads %+v\nwant %+v", i+1, got, published)
		}
		if merged, want := router.MergeSnapshots(got["r1"], got["r2"]), all.Snapshot(); !reflect.DeepEqual(merged, want) {
			t.Errorf("replica %d: merged figures\n got %+v\nwant %+v", i+1, merged, want)
		}
	}
	// Publishing again replaces the replica's figures.
	parts[0].Record(0, time.Millisecond, false)
	again := parts[0].Snapshot()
	if err := fleets[0].Publish(ctx, "r1", []router.EndpointFigures{{Endpoint: "churn", Revision: 3, Stats: again}}); err != nil {
		t.Fatal(err)
	}
	got, err := fleets[1].Figures(ctx, "churn", 3)
	if err != nil || !reflect.DeepEqual(got["r1"], again) {
		t.Errorf("after r1 published again: %+v, %v", got["r1"], err)
	}
	for _, tt := range []struct {
		endpoint string
		revision int
	}{{"churn", 2}, {"churn", 4}, {"missing", 3}} {
		got, err := fleets[0].Figures(ctx, tt.endpoint, tt.revision)
		if err != nil || len(got) != 0 {
			t.Errorf("Figures(%s, %d) = %v, %v; want none", tt.endpoint, tt.revision, got, err)
		}
	}
}

// TestFleet_Prune: a replica's rows of revisions it no longer publishes go
// when it publishes, and so do every replica's rows that no one refreshed
// within FleetRetention; another replica's rows of an older revision stay,
// since that replica may lag.
func TestFleet_Prune(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	f := postgres.NewFleet(pool)
	figures := func(keys ...string) []router.EndpointFigures {
		out := make([]router.EndpointFigures, len(keys))
		for i, k := range keys {
			var name string
			var rev int
			if _, err := fmt.Sscanf(k, "%s %d", &name, &rev); err != nil {
				t.Fatal(err)
			}
			out[i] = router.EndpointFigures{Endpoint: name, Revision: rev, Stats: statsOf(t, name, rev).Snapshot()}
		}
		return out
	}
	steps := []struct {
		name    string
		age     string // a replica whose rows are made older than FleetRetention first
		replica string
		publish []string
		want    []string
	}{
		{"first publication", "", "r1", []string{"churn 1", "fraud 1"}, []string{"churn/1/r1", "fraud/1/r1"}},
		{"another replica", "", "r2", []string{"churn 1"}, []string{"churn/1/r1", "churn/1/r2", "fraud/1/r1"}},
		{"a new revision", "", "r1", []string{"churn 2", "fraud 1"}, []string{"churn/1/r2", "churn/2/r1", "fraud/1/r1"}},
		{"an endpoint gone", "", "r1", []string{"churn 2"}, []string{"churn/1/r2", "churn/2/r1"}},
		{"a replica gone for a day", "r2", "r1", []string{"churn 2"}, []string{"churn/2/r1"}},
		{"no endpoints", "", "r1", nil, nil},
	}
	for _, st := range steps {
		if st.age != "" {
			if _, err := pool.Exec(ctx, `UPDATE router_fleet_figures SET updated_at = now() - $2::interval WHERE replica = $1`,
				st.age, (postgres.FleetRetention + time.Minute).String()); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Publish(ctx, st.replica, figures(st.publish...)); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		rows, err := pool.Query(ctx, `SELECT endpoint || '/' || revision || '/' || replica FROM router_fleet_figures ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: rows %v, want %v", st.name, got, st.want)
		}
	}
}

// fleetModels accepts every model and counts the aliases it moves.
type fleetModels struct {
	mu       sync.Mutex
	promoted []string
}

func (m *fleetModels) Check(context.Context, router.ModelRef) error { return nil }

func (m *fleetModels) CheckPromotion(context.Context, router.ModelRef, string) error { return nil }

func (m *fleetModels) Promote(_ context.Context, _ string, ref router.ModelRef, alias string, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.promoted = append(m.promoted, alias+" -> "+ref.String())
	return nil
}

// TestFleet_ThreeReplicasPromoteOnce runs three services, replicas r1, r2
// and r3, each with its own pool, over one database: a canary is judged on
// the three replicas' figures merged (min_requests is reached only by their
// sum) and promoted once, with one canary_promote in the history and one
// alias move, whether one replica leads or two do at once.
func TestFleet_ThreeReplicasPromoteOnce(t *testing.T) {
	tests := []struct {
		name    string
		leaders []string
		// concurrent ticks every replica at once; otherwise one by one.
		concurrent bool
	}{
		{"r1 leads", []string{"r1"}, false},
		{"two leaders one after the other", []string{"r1", "r2"}, false},
		{"two leaders at once", []string{"r1", "r2"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testservers.Postgres(t)
			clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
			models := &fleetModels{}
			var mu sync.Mutex
			var audited []string
			audit := func(_ context.Context, _, action, _ string, _, _ any) error {
				mu.Lock()
				defer mu.Unlock()
				audited = append(audited, action)
				return nil
			}
			pools := map[string]*pgxpool.Pool{}
			start := func(id string) *router.Service {
				pool := pgdbtest.Open(t, dsn, postgres.Schema)
				pools[id] = pool
				leader := slices.Contains(tt.leaders, id)
				s, err := router.NewService(ctx, postgres.NewStore(pool), models, audit, slog.New(slog.DiscardHandler),
					router.WithClock(clk), router.WithFleet(postgres.NewFleet(pool), id), router.WithLeader(func() bool { return leader }))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			r1 := start("r1")
			if _, _, err := r1.Put(ctx, "alice", "churn", router.Policy{Variants: []router.Variant{{Name: "control", Model: "churn/7", Weight: 1}}}); err != nil {
				t.Fatal(err)
			}
			spec := router.CanarySpec{Model: "churn/8", Steps: []int{100}, Interval: router.Duration(time.Minute),
				Analysis: router.Analysis{MinRequests: 90, MaxErrorRate: 0.05}, PromoteAlias: "champion"}
			if _, err := r1.StartCanary(ctx, "alice", "churn", spec); err != nil {
				t.Fatal(err)
			}
			services := []*router.Service{r1, start("r2"), start("r3")}
			for _, s := range services {
				r, ok := s.Route("churn")
				if !ok {
					t.Fatal("a replica has no route of churn")
				}
				c, _ := r.Variant(router.CanaryVariant)
				for range 30 {
					r.Stats().Record(c, 2*time.Millisecond, false)
					r.Stats().Record(1-c, 2*time.Millisecond, false)
				}
			}
			clk.Advance(time.Minute)

			tick := func() {
				var wg sync.WaitGroup
				for _, s := range services {
					if tt.concurrent {
						wg.Go(func() { s.Tick(ctx) })
					} else {
						s.Tick(ctx)
					}
				}
				wg.Wait()
			}
			tick() // nothing published yet: 30 canary requests on each replica
			if len(audited) != 2 {
				t.Fatalf("audited %v before the replicas published; want the creation and the canary's start only", audited)
			}
			for _, s := range services {
				if err := s.PublishFigures(ctx); err != nil {
					t.Fatal(err)
				}
			}
			f, err := services[0].Figures(ctx, "churn")
			if err != nil {
				t.Fatal(err)
			}
			if f.Stats.Requests != 180 || len(f.Replicas) != 3 {
				t.Errorf("fleet figures: %d requests from %d replicas, want 180 from 3", f.Stats.Requests, len(f.Replicas))
			}
			tick()
			tick()

			if want := []string{router.ActionCreate, router.ActionCanaryStart, router.ActionCanaryPromote}; !slices.Equal(audited, want) {
				t.Errorf("audited %v, want %v", audited, want)
			}
			if want := []string{"champion -> churn/8"}; !slices.Equal(models.promoted, want) {
				t.Errorf("moved aliases %v, want %v", models.promoted, want)
			}
			h, err := postgres.NewStore(pools["r3"]).History(ctx, "churn")
			if err != nil {
				t.Fatal(err)
			}
			var promotions int
			for _, r := range h {
				if r.Action == router.ActionCanaryPromote {
					promotions++
				}
			}
			if promotions != 1 || len(h) != 3 {
				t.Errorf("history of %d revisions holds %d canary_promote; want 3 revisions, one promotion", len(h), promotions)
			}
		})
	}
}
