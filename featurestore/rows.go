package featurestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mlgate/mlgate/internal/jsonerr"
)

// EventTSColumn is the optional column of a written row that holds its event
// time (RFC 3339); rows without it take the time they are written.
const EventTSColumn = "event_ts"

// MaxWriteRows bounds the rows of one write request.
const MaxWriteRows = 50000

// DecodeRows parses a write request, {"rows": [{column: value, ...}, ...]},
// into rows of view v. Each row must give every entity column (a string, or a
// number taken as its decimal text); features may be omitted or null
// (absent); event_ts is optional. Errors match ErrInvalid and name the row
// and column: `rows[3].age: "abc" is not a float`.
func DecodeRows(v *View, body []byte, now time.Time) ([]Row, error) {
	var req struct {
		Rows []map[string]json.RawMessage `json:"rows"`
	}
	if err := jsonerr.Decode(body, &req); err != nil {
		return nil, invalid("request body: %v", err)
	}
	if len(req.Rows) == 0 || len(req.Rows) > MaxWriteRows {
		return nil, invalid("rows: want 1 to %d rows, got %d", MaxWriteRows, len(req.Rows))
	}
	rows := make([]Row, len(req.Rows))
	for i, cols := range req.Rows {
		r, err := decodeRow(v, cols, now)
		if err != nil {
			return nil, invalid("rows[%d].%v", i, err)
		}
		rows[i] = r
	}
	return rows, nil
}

func decodeRow(v *View, cols map[string]json.RawMessage, now time.Time) (Row, error) {
	r := Row{EventTS: now.UTC(), Values: make([]Value, len(v.Features))}
	parts := make([]string, len(v.Entities))
	for j, e := range v.Entities {
		raw, ok := cols[e]
		if !ok {
			return Row{}, fmt.Errorf("%s: missing; every row needs its entity columns (%v)", e, v.Entities)
		}
		val, err := EntityFromJSON(raw)
		if err != nil {
			return Row{}, fmt.Errorf("%s: %v", e, err)
		}
		parts[j] = val
	}
	r.Key = Key(parts)
	for name, raw := range cols {
		if name == EventTSColumn {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return Row{}, fmt.Errorf("%s: %s is not an RFC 3339 time string", name, clip(raw))
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Row{}, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2026-11-21T10:00:00Z", name, s)
			}
			r.EventTS = ts.UTC()
			continue
		}
		if slices.Contains(v.Entities, name) {
			continue
		}
		i := v.Feature(name)
		if i < 0 {
			return Row{}, fmt.Errorf("%s: view %s has no such column (entities %v, features and %s)", name, v.Name, v.Entities, EventTSColumn)
		}
		val, err := ValueFromJSON(v.Features[i].Type, raw)
		if err != nil {
			return Row{}, fmt.Errorf("%s: %v", name, err)
		}
		r.Values[i] = val
	}
	return r, nil
}

// EntityFromJSON reads an entity column value: a string, or a number taken
// as its decimal text.
func EntityFromJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	switch {
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%s is not a valid string", clip(raw))
		}
	case isNumber(raw):
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", fmt.Errorf("%s is not a number", clip(raw))
		}
		s = string(raw)
	default:
		return "", fmt.Errorf("%s is not a string or a number", clip(raw))
	}
	if err := CheckEntityValue(s); err != nil {
		return "", fmt.Errorf("%q %v", s, err)
	}
	return s, nil
}
