package postgres_test

import (
	"testing"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/drift/drifttest"
	"github.com/mlgate/mlgate/drift/postgres"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
)

func TestFleet(t *testing.T) {
	drifttest.TestFleet(t, func(t *testing.T) drift.Fleet {
		return postgres.NewFleet(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	})
}
