package serving

import (
	"strconv"
	"testing"
)

// predictBodies are predict requests: raw inputs, and 1 and 100 entity keys.
var predictBodies = []struct{ name, body string }{
	{"Inputs", `{"inputs":{"x":[[1,2,3,4]]}}`},
	{"Entities1", `{"entities":{"user_id":["u1"]}}`},
	{"Entities100", func() string {
		b := []byte(`{"entities":{"user_id":[`)
		for i := range 100 {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, "u"+strconv.Itoa(i))
		}
		return string(b) + "]}}"
	}()},
}

func BenchmarkDecodePredictRequest(b *testing.B) {
	benchmarkDecodePredict(b, decodePredictRequest)
}

// BenchmarkDecodeWirePredict measures the reference decoder, which
// decodePredictRequest leaves the requests its one-pass scan declines.
func BenchmarkDecodeWirePredict(b *testing.B) {
	benchmarkDecodePredict(b, decodeWirePredict)
}

func benchmarkDecodePredict(b *testing.B, decode func([]byte, limits) (*predictRequest, error)) {
	for _, c := range predictBodies {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := decode(body, defaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
