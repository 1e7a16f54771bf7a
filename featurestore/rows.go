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

// Limits bound what one request may hold. The gateway sets them from its
// configuration, and an error over a bound names the config key that sets
// it (limits.max_rows, limits.max_string_bytes).
type Limits struct {
	// MaxRows bounds the rows of a write.
	MaxRows int
	// MaxStringBytes bounds an entity key or a string feature value. Entity
	// keys are bounded to 1024 bytes in any case (CheckEntityValue).
	MaxStringBytes int
}

// DecodeRows parses a write request, {"rows": [{column: value, ...}, ...]},
// into rows of view v. Each row must give every entity column (a string, or a
// number taken as its decimal text); features may be omitted or null
// (absent); event_ts is optional. Errors match ErrInvalid and name the row
// and column: `rows[3].age: "abc" is not a float`, or the bound of lim that
// the request is over.
func DecodeRows(v *View, body []byte, now time.Time, lim Limits) ([]Row, error) {
	var req struct {
		Rows []map[string]json.RawMessage `json:"rows"`
	}
	if err := jsonerr.Decode(body, &req); err != nil {
		return nil, invalid("request body: %v", err)
	}
	if len(req.Rows) == 0 {
		return nil, invalid("rows: at least one row is required")
	}
	if len(req.Rows) > lim.MaxRows {
		return nil, invalid("rows: %d rows is more than limits.max_rows (%d)", len(req.Rows), lim.MaxRows)
	}
	rows := make([]Row, len(req.Rows))
	for i, cols := range req.Rows {
		r, err := decodeRow(v, cols, now, lim)
		if err != nil {
			return nil, invalid("rows[%d].%v", i, err)
		}
		rows[i] = r
	}
	return rows, nil
}

func decodeRow(v *View, cols map[string]json.RawMessage, now time.Time, lim Limits) (Row, error) {
	r := Row{EventTS: now.UTC(), Values: make([]Value, len(v.Features))}
	parts := make([]string, len(v.Entities))
	for j, e := range v.Entities {
		raw, ok := cols[e]
		if !ok {
			return Row{}, fmt.Errorf("%s: missing; every row needs its entity columns (%v)", e, v.Entities)
		}
		val, err := EntityFromJSON(raw)
		if err == nil {
			err = lim.checkString(val)
		}
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
		if err == nil && val.Type == String {
			err = lim.checkString(val.Str)
		}
		if err != nil {
			return Row{}, fmt.Errorf("%s: %v", name, err)
		}
		r.Values[i] = val
	}
	return r, nil
}

// checkString refuses a string longer than MaxStringBytes.
func (l Limits) checkString(s string) error {
	if len(s) > l.MaxStringBytes {
		return fmt.Errorf("a string of %d bytes is longer than limits.max_string_bytes (%d)", len(s), l.MaxStringBytes)
	}
	return nil
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
