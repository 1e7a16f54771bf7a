package serving

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/errkind"
)

// limits bound what one request may hold; errors over a bound name its
// config key (limits.max_rows, ...).
type limits struct {
	maxRows     int
	maxElements int64
	maxString   int
}

// defaultLimits are the limits of an Options that sets none.
var defaultLimits = limits{maxRows: DefaultMaxRows, maxElements: DefaultMaxTensorElements, maxString: DefaultMaxStringBytes}

func limitsOf(o Options) limits {
	l := defaultLimits
	if o.MaxRows > 0 {
		l.maxRows = o.MaxRows
	}
	if o.MaxTensorElements > 0 {
		l.maxElements = int64(o.MaxTensorElements)
	}
	if o.MaxStringBytes > 0 {
		l.maxString = o.MaxStringBytes
	}
	return l
}

// rows returns the limits the feature store applies to written rows.
func (l limits) rows() featurestore.Limits {
	return featurestore.Limits{MaxRows: l.maxRows, MaxStringBytes: l.maxString}
}

// checkShape refuses a tensor shape whose batch (first) dimension is over
// limits.max_rows (ErrInvalidInput, 400) or that holds more than
// limits.max_tensor_elements elements (errTooLarge, 413), before anything
// is allocated for it; n is the shape's element count. The caller wraps the
// error with the name of the tensor.
func (l limits) checkShape(shape []int64, n int64) error {
	if len(shape) > 0 && shape[0] > int64(l.maxRows) {
		return invalidInput("a batch of %d rows (shape[0]) is more than limits.max_rows (%d)", shape[0], l.maxRows)
	}
	if n > l.maxElements {
		return errkind.New(errTooLarge, "shape %s holds %d elements, more than limits.max_tensor_elements (%d)", shapeString(shape), n, l.maxElements)
	}
	return nil
}

// checkString refuses a string value longer than limits.max_string_bytes
// with a plain error, for the caller to wrap with the field at fault.
func (l limits) checkString(s string) error {
	if len(s) > l.maxString {
		return fmt.Errorf("a string of %d bytes is longer than limits.max_string_bytes (%d)", len(s), l.maxString)
	}
	return nil
}

// checkColumns bounds columns of per-row values (entity keys, request
// values) before they are decoded: at most limits.max_rows values in a
// column, and no string longer than limits.max_string_bytes. field names the
// columns in errors ("entities").
func (l limits) checkColumns(field string, cols map[string][]json.RawMessage) error {
	for col, vals := range cols {
		if len(vals) > l.maxRows {
			return invalidInput("%s.%s: %d rows is more than limits.max_rows (%d)", field, col, len(vals), l.maxRows)
		}
		for i, raw := range vals {
			// A JSON string decodes to fewer bytes than its text holds, so
			// only long texts need decoding to tell.
			if len(raw) <= l.maxString+2 {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				continue // not a string: the decoder of the column says what is wrong
			}
			if err := l.checkString(s); err != nil {
				return invalidInput("%s.%s[%d]: %v", field, col, i, err)
			}
		}
	}
	return nil
}

// retryAfter is the Retry-After of a wait: whole seconds, at least 1.
func retryAfter(wait time.Duration) int64 {
	return max(1, int64((wait+time.Second-1)/time.Second))
}
