package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/drift/drifttest"
	"github.com/mlgate/mlgate/drift/postgres"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
)

func TestStore(t *testing.T) {
	drifttest.TestStore(t, func(t *testing.T) drift.Store {
		return postgres.NewStore(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	})
}

// TestTwoReplicasPutMonitors has two stores on one database, each with its
// own pool as two gateways would, put monitors at once: each store lists
// every monitor put through either.
func TestTwoReplicasPutMonitors(t *testing.T) {
	ctx := context.Background()
	dsn := testservers.Postgres(t)
	stores := []drift.Store{
		postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)),
		postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)),
	}
	const each = 20
	var (
		wg   sync.WaitGroup
		want []drift.MonitorSpec
	)
	errs := make(chan error, len(stores)*each)
	for i, s := range stores {
		for j := range each {
			spec := drifttest.Sample(fmt.Sprintf("replica-%d-%d", i, j), j+1)
			want = append(want, spec)
			wg.Go(func() { errs <- s.PutMonitor(ctx, spec) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("PutMonitor: %v", err)
		}
	}
	for i, s := range stores {
		drifttest.CheckMonitors(t, fmt.Sprintf("Monitors of store %d", i), s, want...)
	}
}
