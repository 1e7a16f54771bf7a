package serving_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
)

// TestSecretsStayOut sends an API key, a wrong key and a webhook secret
// through a traced gateway that logs at debug level, then looks for them in
// the log, the spans, the inference table files, the audit trail and the
// monitors as read back: none may hold them. (The audit names the key
// "root"; the monitor shows its secret as "redacted".)
func TestSecretsStayOut(t *testing.T) {
	const key, wrongKey, hookSecret = "k-root-7f3c9a", "k-guess-51b2e0", "whsec-d41d8c"
	tr, exp := inMemoryTracing(t)
	var buf syncBuffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	g := startGateway(t, withTracing(tr), withLog(log),
		withKeys(auth.Key{Name: "root", SHA256: keyFor(key), Roles: []auth.Role{auth.Admin}}))
	g.apiKey = key
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	if r := g.upload("linear", raw, `{"baseline": `+linearBaseline(t)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.must("PUT", "/v1/monitors/m", `{"model": "linear", "window": "1m", "thresholds": {"psi": 0.2},
		"webhook": {"url": "http://127.0.0.1:9/hook", "secret": "`+hookSecret+`"}}`, 200)
	for range 3 {
		g.must("POST", "/v1/models/linear/predict", `{`+linearInputs+`}`, 200)
	}
	g.apiKey = wrongKey
	g.must("POST", "/v1/models/linear/predict", `{`+linearInputs+`}`, 401)
	g.apiKey = key
	if err := g.server.FlushRecords(context.Background()); err != nil {
		t.Fatal(err)
	}

	places := map[string]string{
		"log":      buf.String(),
		"audit":    string(g.must("GET", "/v1/audit", "", 200).body),
		"monitors": string(g.must("GET", "/v1/monitors", "", 200).body),
	}
	var spans strings.Builder
	for _, s := range exp.GetSpans() {
		spans.WriteString(s.Name + " " + s.Status.Description)
		for _, a := range s.Attributes {
			spans.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
		}
		for _, e := range s.Events {
			spans.WriteString(" " + e.Name)
			for _, a := range e.Attributes {
				spans.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
			}
		}
		spans.WriteString("\n")
	}
	places["spans"] = spans.String()
	var files int
	filepath.WalkDir(filepath.Join(g.dataDir, "inference"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			raw, _ := os.ReadFile(path)
			places["inference table "+filepath.Base(path)] = string(raw)
			files++
		}
		return nil
	})
	if files == 0 || !strings.Contains(places["log"], `"route"`) || !strings.Contains(places["spans"], "http.route") ||
		!strings.Contains(places["audit"], `"actor":"root"`) || !strings.Contains(places["monitors"], `"secret":"redacted"`) {
		t.Fatalf("nothing to look in: %d table files, log %d bytes, spans:\n%s\naudit: %s\nmonitors: %s",
			files, len(places["log"]), places["spans"], places["audit"], places["monitors"])
	}
	for where, text := range places {
		for _, secret := range []string{key, wrongKey, hookSecret} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds the secret %q", where, secret)
			}
		}
	}
}
