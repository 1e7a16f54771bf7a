package serving

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/serving/tables"
)

// Tables is the inference-table writer (a tables.Writer). Write must not
// block.
type Tables interface {
	Write(tables.Row)
	Stats() tables.Stats
	// QueueLen returns the number of rows waiting to be written.
	QueueLen() int
	// QueueCap returns how many rows the queue holds.
	QueueCap() int
	Flush(ctx context.Context) error
	DeleteEntity(ctx context.Context, column, value string) (int64, error)
	// AppendLabels writes ground-truth labels in a file of this replica's
	// own.
	AppendLabels(labels []tables.Label) error
	ReadRows(ctx context.Context, f tables.Filter, fn func(tables.Row) error) error // every accepted row, completing no file (see tables.Writer.ReadRows)
	// Healthy returns nil while rows are durable as promised, and
	// otherwise the I/O error that keeps them from being so.
	Healthy() error
}

// maxAskedName bounds the model name a row keeps when no model version
// served the request: the name asked for, which any caller chooses. Real
// model names are at most 128 bytes.
const maxAskedName = 256

// record gives a prediction to the drift monitors that watch it, and
// records it in the inference table (when the endpoint samples it), with the
// PII fields of its endpoint hashed. A request no model version served
// keeps the model name asked for, cut to maxAskedName bytes, in a column
// only: the table is partitioned by date. It runs on the recorder's
// goroutine.
func (s *Server) record(o *observation) {
	s.feedDrift(o)
	if s.tables == nil {
		return
	}
	var pii []string
	row := tables.Row{
		RequestID: o.requestID,
		Timestamp: o.start,
		Variant:   o.variant,
		IsShadow:  o.shadow,
		ModelName: o.model,
		LatencyUS: o.latency.Microseconds(),
		Response:  o.answer,
	}
	if o.route != nil {
		if r := o.route.TableSample(); r < 1 && rand.Float64() >= r {
			return
		}
		row.Endpoint = o.route.Endpoint()
		pii = o.route.PII()
	}
	if row.RequestID == "" {
		row.RequestID = uuid.NewString()
	}
	if o.err != nil {
		row.StatusCode = int32(statusOf(o.err))
		row.Error = o.err.Error()
	} else {
		row.StatusCode = 200
	}
	if o.p != nil {
		row.ModelName, row.ModelVersion, row.ModelUUID = o.p.Version.Name, int64(o.p.Version.Version), o.p.Version.UUID
		if o.p.asm != nil {
			row.Features, row.FeatureStatus = featuresJSON(o.p.asm, pii, s.piiKey)
		}
	}
	if ents := o.entities(); len(ents) > 0 {
		if raw, err := entitiesJSON(ents); err == nil {
			row.Entities = string(redact(raw, pii, s.piiKey))
		}
	}
	row.Request = o.request
	if len(pii) > 0 {
		row.Request = string(redact([]byte(o.request), pii, s.piiKey))
	}
	s.tables.Write(row)
}

// truncate returns s cut to at most n bytes, without splitting a UTF-8
// sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// featuresJSON writes, for the inference table, the values a prediction's
// features took and their statuses, both by feature with one entry per
// entity row: {"view:feature": [v, ...], ...} and {"view:feature":
// ["PRESENT", "STALE", ...], ...}. It runs for every logged prediction, so it
// writes the JSON by hand (a 100 × 50 request through maps and
// encoding/json cost 2.5 ms of CPU), both into one buffer that becomes one
// string, which the two share.
func featuresJSON(a *featurestore.Assembly, pii []string, key []byte) (string, string) {
	buf := make([]byte, 0, 24*len(a.Refs)*(len(a.Statuses)+1)+16)
	buf = append(buf, '{')
	for i, ref := range a.Refs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, ref)
		buf = append(buf, ":["...)
		for row := range a.Used[i] {
			if row > 0 {
				buf = append(buf, ',')
			}
			buf = appendValue(buf, a.Used[i][row])
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	n := len(buf)
	buf = append(buf, '{')
	for i, ref := range a.Refs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, ref)
		buf = append(buf, ":["...)
		for row, statuses := range a.Statuses {
			if row > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"') // statuses are upper-case words: nothing to escape
			buf = append(buf, statuses[i]...)
			buf = append(buf, '"')
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	both := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	if len(pii) > 0 {
		return string(redact(buf[:n], pii, key)), both[n:]
	}
	return both[:n], both[n:]
}

// entitiesJSON writes a request's entity keys as json.Marshal does (keys
// sorted, values compacted and HTML-escaped), by hand when that is only
// copying them: every key and value is plain ASCII with nothing
// json.Marshal would change (no space, '<', '>', '&', and for a key no
// quote or backslash either). Otherwise it is json.Marshal's.
func entitiesJSON(ents map[string][]json.RawMessage) ([]byte, error) {
	size := 2
	for k, vals := range ents {
		if vals == nil || !plainJSON(k, true) {
			return json.Marshal(ents)
		}
		size += len(k) + 5
		for _, v := range vals {
			if !plainJSON(str(v), false) {
				return json.Marshal(ents)
			}
			size += len(v) + 1
		}
	}
	keys := make([]string, 0, len(ents))
	for k := range ents {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":[`...)
		for j, v := range ents[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, v...)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// plainJSON reports whether s holds only printable ASCII that json.Marshal
// writes as it is: no space (compacting removes it outside strings), no
// '<', '>' or '&' (escaped for HTML), and for a key, which json.Marshal
// quotes, no quote or backslash.
func plainJSON(s string, key bool) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '&':
			return false
		case key && (c == '"' || c == '\\'):
			return false
		}
	}
	return true
}

// appendValue writes a feature value as JSON; a missing one is null.
func appendValue(b []byte, v *featurestore.Value) []byte {
	switch v.Type {
	case featurestore.Float:
		return appendFloat32(b, float32(v.Num))
	case featurestore.Double:
		return appendFloat64(b, v.Num)
	case featurestore.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case featurestore.Bool:
		return strconv.AppendBool(b, v.Int != 0)
	case featurestore.String:
		return appendString(b, v.Str)
	case featurestore.FloatList:
		return appendSlice(b, v.List, appendFloat32)
	}
	return append(b, "null"...)
}

// redact replaces, in a JSON object, the values of the fields named in pii
// (at the top level, or inside its "entities", "request" and "inputs"
// objects) by a keyed hash of their JSON text: "pii:" and 24 hex digits,
// equal for equal values, so rows can still be joined. Anything that is not
// a JSON object is returned as it is.
func redact(raw []byte, pii []string, key []byte) []byte {
	if len(pii) == 0 {
		return raw
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	for k, v := range obj {
		switch {
		case slices.Contains(pii, k):
			obj[k] = hashValues(v, key)
		case k == "entities" || k == "request" || k == "inputs":
			obj[k] = redact(v, pii, key)
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}

// hashValues hashes a value, or each element of an array.
func hashValues(v json.RawMessage, key []byte) json.RawMessage {
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		for i, e := range list {
			list[i] = hashValue(e, key)
		}
		out, _ := json.Marshal(list)
		return out
	}
	return hashValue(v, key)
}

func hashValue(v json.RawMessage, key []byte) json.RawMessage {
	m := hmac.New(sha256.New, key)
	m.Write(v)
	out, _ := json.Marshal("pii:" + hex.EncodeToString(m.Sum(nil)[:12]))
	return out
}
