package gateway

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestViewChangesInAudit checks that creating, changing and deleting a
// feature view leave events in GET /v1/audit?view=.
func TestViewChangesInAudit(t *testing.T) {
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	view := `{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}]}`
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(view))
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(strings.Replace(view, `}]}`, `}, {"name": "visits", "type": "int"}]}`, 1)))
	call(t, g, "DELETE", "/v1/feature-views/user", "", nil)
	body := call(t, g, "GET", "/v1/audit?view=user", "", nil)
	for _, want := range []string{`"action":"create_feature_view"`, `"action":"change_feature_view"`, `"action":"delete_feature_view"`, `"view":"user"`} {
		if !strings.Contains(body, want) {
			t.Errorf("audit lacks %s: %s", want, body)
		}
	}
	t.Log(body)
}
