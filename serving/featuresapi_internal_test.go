package serving

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
)

// TestAppendOnlineAnswer: the hand-written answer of an online read is
// the JSON encoding/json writes of the same answer.
func TestAppendOnlineAnswer(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	res := &featurestore.OnlineResult{
		Features: []string{"user:age", "user:name", "user:visits", "user:vip", "user:emb", "user:income", "user:gone"},
		Rows: []featurestore.OnlineRow{{
			Entities: map[string]string{"user_id": "u\"1", "country": "fr"},
			Values: []featurestore.Value{{Type: featurestore.Float, Num: 31.5}, {Type: featurestore.String, Str: "Zoë \n<x>"},
				{Type: featurestore.Int, Int: -4}, {Type: featurestore.Bool, Int: 1}, {Type: featurestore.FloatList, List: []float32{0.1, 2}},
				{Type: featurestore.Double, Num: 1e21}, {}},
			Statuses: []featurestore.Status{"PRESENT", "PRESENT", "STALE", "PRESENT", "PRESENT", "PRESENT", "NOT_FOUND"},
			EventTS:  []time.Time{at, at, at, at, at, at, {}},
		}},
		Degraded: []string{"redis"},
	}
	var got, want any
	if err := json.Unmarshal(appendOnlineAnswer(nil, res), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, appendOnlineAnswer(nil, res))
	}
	r := res.Rows[0]
	ts := make([]*time.Time, len(r.EventTS))
	for i := range r.EventTS {
		if !r.EventTS[i].IsZero() {
			ts[i] = &r.EventTS[i]
		}
	}
	values := make([]any, len(r.Values))
	for i, v := range r.Values {
		values[i] = v.JSON()
	}
	raw, _ := json.Marshal(map[string]any{"features": res.Features, "degraded": true, "rows": []any{map[string]any{
		"entities": r.Entities, "values": values, "statuses": r.Statuses, "event_timestamps": ts}}})
	json.Unmarshal(raw, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %s\nwant %s", appendOnlineAnswer(nil, res), raw)
	}
}

// BenchmarkAppendOnlineAnswer: the answer of 100 entities of 50 features.
func BenchmarkAppendOnlineAnswer(b *testing.B) {
	res := &featurestore.OnlineResult{}
	for i := range 50 {
		res.Features = append(res.Features, "v:f"+string(rune('a'+i%26)))
	}
	at := time.Now()
	for range 100 {
		row := featurestore.OnlineRow{Entities: map[string]string{"driver_id": "1001"}}
		for range 50 {
			row.Values = append(row.Values, featurestore.Value{Type: featurestore.Double, Num: 0.123456789})
			row.Statuses = append(row.Statuses, "PRESENT")
			row.EventTS = append(row.EventTS, at)
		}
		res.Rows = append(res.Rows, row)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendOnlineAnswer(buf[:0], res)
	}
}
