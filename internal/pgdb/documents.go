package pgdb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Documents runs sql, whose rows are a key and a JSON document, and decodes
// the documents in row order. A document that does not decode is an error
// naming what it is and its key ("decode view churn: ...").
func Documents[T any](ctx context.Context, pool *pgxpool.Pool, what, sql string, args ...any) ([]T, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := []T{}
	var key string
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &raw}, func() error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %s %s: %w", what, key, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}
