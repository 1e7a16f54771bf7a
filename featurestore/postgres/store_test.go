package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/postgres"
	"github.com/mlgate/mlgate/featurestore/storetest"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
)

func TestViewStore(t *testing.T) {
	storetest.TestViewStore(t, func(t *testing.T) featurestore.ViewStore {
		return postgres.NewViewStore(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	})
}

func view(name string) *featurestore.View {
	at := time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)
	return &featurestore.View{
		Name:      name,
		Entities:  []string{"user_id"},
		Features:  []featurestore.Feature{{Name: "score", Type: featurestore.Double}},
		TTL:       featurestore.Duration(time.Hour),
		Store:     "redis",
		CreatedAt: at,
		UpdatedAt: at,
	}
}

// TestTwoReplicasPutViews has two stores on one database, each with its own
// pool as two gateways would, put views at once: every view is listed, by
// either of them.
func TestTwoReplicasPutViews(t *testing.T) {
	dsn := testservers.Postgres(t)
	replicas := []*postgres.ViewStore{
		postgres.NewViewStore(pgdbtest.Open(t, dsn, postgres.Schema)),
		postgres.NewViewStore(pgdbtest.Open(t, dsn, postgres.Schema)),
	}
	const perReplica = 50
	var wg sync.WaitGroup
	for r, s := range replicas {
		wg.Go(func() {
			for i := range perReplica {
				if err := s.PutView(t.Context(), view(fmt.Sprintf("r%d_view_%d", r, i))); err != nil {
					t.Errorf("replica %d: %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for r, s := range replicas {
		views, err := s.Views(t.Context())
		if err != nil {
			t.Fatalf("replica %d: Views: %v", r, err)
		}
		names := map[string]bool{}
		for _, v := range views {
			names[v.Name] = true
		}
		for w := range replicas {
			for i := range perReplica {
				if name := fmt.Sprintf("r%d_view_%d", w, i); !names[name] {
					t.Errorf("replica %d does not list %s, put by replica %d", r, name, w)
				}
			}
		}
		if len(views) != len(replicas)*perReplica {
			t.Errorf("replica %d lists %d views; want %d", r, len(views), len(replicas)*perReplica)
		}
	}
}

// TestDocumentsAsWritten reads the row in SQL: it is the JSON the gateway
// wrote, byte for byte (json, not jsonb, which would reorder its keys).
func TestDocumentsAsWritten(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	v := view("users")
	if err := postgres.NewViewStore(pool).PutView(ctx, v); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT view::text FROM featurestore_views WHERE name = 'users'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("row:\n got %s\nwant %s", got, want)
	}
}
