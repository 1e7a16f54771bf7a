package main

import (
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/gateway"
)

func TestDemoMessage(t *testing.T) {
	key := strings.Repeat("ab", 32)
	got := demoMessage("http://127.0.0.1:8080", key, "mlgate-data/demo.key")
	for _, want := range []string{
		"made an admin key (kept in mlgate-data/demo.key):\n\n  " + key + "\n",
		`curl -s http://127.0.0.1:8080/v2/models/iris/infer -H "Authorization: Bearer ` + key + `" -H 'Content-Type: application/json' \` + "\n    -d '" + gateway.DemoRequest + "'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo message lacks %q:\n%s", want, got)
		}
	}
	got = demoMessage("https://gw:8443", "", "")
	if !strings.Contains(got, `curl -s https://gw:8443/v2/models/iris/infer -H "Authorization: Bearer $MLGATE_API_KEY"`) || strings.Contains(got, "made an admin key") {
		t.Errorf("demo message with keys configured:\n%s", got)
	}
}
