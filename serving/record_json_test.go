package serving

import (
	"encoding/json"
	"fmt"
	"testing"
)

var entityCases = []string{
	`{"user_id": ["u1", "u2"]}`,
	`{"user_id": [1, -2.5e3, true], "b": ["x"], "a": []}`,
	`{"user_id": ["a b"]}`,
	`{"user_id": ["<script>", "a&b"]}`,
	`{"us\"er": ["x"], "k<": [1]}`,
	`{"user_id": ["\u00e9", "\u2028"]}`,
	`{"user_id": [{"a": [1, 2]}, [ 1 , 2 ]]}`,
	`{"": ["\\\"", "\\u003c"]}`,
}

// TestEntitiesJSON checks that entitiesJSON writes what json.Marshal does.
func TestEntitiesJSON(t *testing.T) {
	for _, c := range entityCases {
		checkEntitiesJSON(t, []byte(c))
	}
}

// FuzzEntitiesJSON checks entitiesJSON against json.Marshal on the entity
// columns of any predict request.
func FuzzEntitiesJSON(f *testing.F) {
	for _, c := range entityCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkEntitiesJSON)
}

func checkEntitiesJSON(t *testing.T, raw []byte) {
	var ents map[string][]json.RawMessage
	if json.Unmarshal(raw, &ents) != nil {
		return
	}
	want, werr := json.Marshal(ents)
	got, err := entitiesJSON(ents)
	if string(got) != string(want) || (err == nil) != (werr == nil) {
		t.Fatalf("entitiesJSON(%s) = %s, %v; json.Marshal gives %s, %v", raw, got, err, want, werr)
	}
}

func BenchmarkEntitiesJSON(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("Entities%d", n), func(b *testing.B) {
			vals := make([]json.RawMessage, n)
			for i := range vals {
				vals[i] = json.RawMessage(fmt.Sprintf(`"u%d"`, i))
			}
			ents := map[string][]json.RawMessage{"user_id": vals}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := entitiesJSON(ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
