package serving

import (
	"testing"
	"time"
)

// BenchmarkHandOff is what a request pays to hand its observation to the
// recorder: its body and answer copied for the table row.
func BenchmarkHandOff(b *testing.B) {
	body := linearRequest(b, 1)
	answer := []byte(`{"model_name":"linear","model_version":"1","id":"bench","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[4,10]}]}`)
	b.ReportAllocs()
	for b.Loop() {
		o := observation{body: body, response: answer, model: "linear", start: time.Now()}
		o.handOff(true)
	}
}
