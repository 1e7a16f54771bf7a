package serving_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
)

// lastAudit returns the newest audit event of model.
func (g *gateway) lastAudit(model string) registry.AuditEvent {
	g.t.Helper()
	var audit struct {
		Events []registry.AuditEvent `json:"events"`
	}
	g.must("GET", "/v1/audit?model="+model+"&limit=1000", "", 200).decode(g.t, &audit)
	if len(audit.Events) == 0 {
		g.t.Fatalf("no audit event of %s", model)
	}
	return audit.Events[len(audit.Events)-1]
}

// TestProtectedAliases moves champion, which the default configuration
// protects with PASSED, to a version of each validation status, as an sre
// and as an admin, with and without "force": a version without PASSED is
// refused with 409 naming its status, unless an admin forces it, which the
// audit trail records; an sre may not force (403 naming the role).
func TestProtectedAliases(t *testing.T) {
	g := startGateway(t, withKeys(roleKeys...))
	linear := mustRead(t, modelzoo.Path(modelzoo.Linear))
	tests := []struct {
		status string // "" registers the version without the tag
		key    string
		force  bool
		want   int
		says   string
	}{
		{"", "k-sre", false, 409, "version 1 is PENDING"},
		{"", "k-sre", true, 403, `key "sam" lacks the admin role that "force" needs`},
		{"", "k-admin", false, 409, "version 1 is PENDING"},
		{"", "k-admin", true, 200, ""},
		{"PENDING", "k-sre", false, 409, "version 1 is PENDING"},
		{"PENDING", "k-sre", true, 403, "lacks the admin role"},
		{"PENDING", "k-admin", false, 409, "version 1 is PENDING"},
		{"PENDING", "k-admin", true, 200, ""},
		{"FAILED", "k-sre", false, 409, "version 1 is FAILED"},
		{"FAILED", "k-sre", true, 403, "lacks the admin role"},
		{"FAILED", "k-admin", false, 409, "version 1 is FAILED"},
		{"FAILED", "k-admin", true, 200, ""},
		{"PASSED", "k-sre", false, 200, ""},
		{"PASSED", "k-sre", true, 403, "lacks the admin role"},
		{"PASSED", "k-admin", false, 200, ""},
		{"PASSED", "k-admin", true, 200, ""},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/force=%t", cmp.Or(tt.status, "absent"), tt.key, tt.force), func(t *testing.T) {
			g.t = t
			model := fmt.Sprintf("m%d", i)
			metadata := ""
			if tt.status != "" {
				metadata = `{"tags": {"validation_status": "` + tt.status + `"}}`
			}
			g.apiKey = "k-ds"
			if r := g.upload(model, linear, metadata); r.status != 201 {
				t.Fatalf("register: %d %s", r.status, r.body)
			}
			g.apiKey = tt.key
			body := fmt.Sprintf(`{"version": 1, "force": %t}`, tt.force)
			r := g.do("PUT", "/v1/models/"+model+"/aliases/champion", "application/json", []byte(body))
			if r.status != tt.want {
				t.Fatalf("%s: %d %s, want %d", body, r.status, r.body, tt.want)
			}
			var m registry.Model
			g.must("GET", "/v1/models/"+model, "", 200).decode(t, &m)
			ev := g.lastAudit(model)
			if tt.want != 200 {
				msg := r.errorMessage(t)
				if !strings.Contains(msg, tt.says) {
					t.Errorf("refusal %q does not say %q", msg, tt.says)
				}
				if tt.want == 409 && (!strings.Contains(msg, `alias "champion" of model "`+model+`" is protected`) ||
					!strings.Contains(msg, "PASSED") || !strings.Contains(msg, `"force": true`)) {
					t.Errorf("refusal %q does not name the alias, the status required and how to force", msg)
				}
				if len(m.Aliases) != 0 || ev.Action != registry.ActionRegisterVersion {
					t.Errorf("a refused move left aliases %v and event %s", m.Aliases, ev.Action)
				}
				return
			}
			if m.Aliases["champion"] != 1 {
				t.Errorf("aliases %v, want champion on version 1", m.Aliases)
			}
			var after struct {
				Forced   bool   `json:"forced"`
				Status   string `json:"status"`
				Required string `json:"required"`
			}
			if err := json.Unmarshal(ev.After, &after); err != nil || ev.Action != registry.ActionSetAlias {
				t.Fatalf("last event %s %s, want set_alias", ev.Action, ev.After)
			}
			forced := tt.status != "PASSED"
			if want := cmp.Or(tt.status, "PENDING"); after.Forced != forced || forced && (after.Status != want || after.Required != "PASSED") {
				t.Errorf("set_alias after %s; want forced %t with status %s", ev.After, forced, want)
			}
		})
	}
}

// TestProtectedAliasInvalidated: a champion's version tagged FAILED keeps
// champion (the status is a fact), and the change is audited as
// protected_alias_invalidated and counted.
func TestProtectedAliasInvalidated(t *testing.T) {
	m, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, withMetrics(m))
	linear := mustRead(t, modelzoo.Path(modelzoo.Linear))
	if r := g.upload("linear", linear, `{"tags": {"validation_status": "PASSED"}}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.setAlias("linear", "champion", 1)
	g.must("PUT", "/v1/models/linear/versions/1/tags/validation_status", `{"value": "FAILED"}`, 200)

	var model registry.Model
	g.must("GET", "/v1/models/linear", "", 200).decode(t, &model)
	if model.Aliases["champion"] != 1 {
		t.Errorf("aliases %v, want champion still on version 1", model.Aliases)
	}
	ev := g.lastAudit("linear")
	if ev.Action != registry.ActionProtectedAliasInvalidated || ev.Version != 1 ||
		string(ev.After) != `{"alias":"champion","status":"FAILED","required":"PASSED"}` {
		t.Errorf("last event %s of version %d: %s, want protected_alias_invalidated of version 1", ev.Action, ev.Version, ev.After)
	}
	series := parseSeries(t, g.do("GET", "/metrics", "", nil).body)
	key := `mlgate_protected_alias_invalidated_total{alias="champion",cause="status_changed",model="linear",status="FAILED"}`
	if series[key] != "1" {
		t.Errorf("%s = %q, want 1; series: %v", key, series[key], series)
	}
	// Tagging it FAILED again changes nothing, and is not counted again.
	g.must("PUT", "/v1/models/linear/versions/1/tags/validation_status", `{"value": "FAILED"}`, 200)
	if ev := g.lastAudit("linear"); ev.Action != registry.ActionSetTag {
		t.Errorf("the same status again raised %s", ev.Action)
	}
}

// TestCanaryPromotionRefused: a canary of a version without PASSED, which
// champion requires, cannot start when it would be promoted into champion;
// one whose version is tagged FAILED while it runs is rolled back at
// promotion, the canary saying why, and champion stays where it was.
func TestCanaryPromotionRefused(t *testing.T) {
	g := startGateway(t)
	linear := mustRead(t, modelzoo.Path(modelzoo.Linear))
	if r := g.upload("linear", linear, `{"tags": {"validation_status": "PASSED"}}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if r := g.upload("linear", linear, ""); r.status != 201 { // version 2, PENDING
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.setAlias("linear", "champion", 1)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear@champion", "weight": 100}]}`, 201)

	canary := `{"model": "linear/2", "steps": [100], "interval": "1s"}`
	r := g.must("POST", "/v1/endpoints/churn/canary", canary, 409)
	if msg := r.errorMessage(t); !strings.Contains(msg, "could not be promoted") || !strings.Contains(msg, "version 2 is PENDING") {
		t.Errorf("refusal %q does not say why", msg)
	}
	if e := g.endpoint(); e.Canary != nil {
		t.Fatalf("a refused canary started: %+v", e.Canary)
	}

	g.must("PUT", "/v1/models/linear/versions/2/tags/validation_status", `{"value": "PASSED"}`, 200)
	g.must("POST", "/v1/endpoints/churn/canary", canary, 200)
	g.must("PUT", "/v1/models/linear/versions/2/tags/validation_status", `{"value": "FAILED"}`, 200)
	waitFor(t, func() bool { return g.endpoint().Canary.State != router.CanaryRunning })
	e := g.endpoint()
	if e.Canary.State != router.CanaryRolledBack || !strings.HasPrefix(e.Canary.Reason, "promotion refused: ") ||
		!strings.Contains(e.Canary.Reason, "version 2 is FAILED") {
		t.Errorf("canary %s, reason %q; want rolled_back with the refusal", e.Canary.State, e.Canary.Reason)
	}
	if v := e.Policy.Variants[0]; v.Model != "linear@champion" || v.Weight != 100 {
		t.Errorf("after the rollback the variants are %+v, want the baseline", e.Policy.Variants)
	}
	var model registry.Model
	g.must("GET", "/v1/models/linear", "", 200).decode(t, &model)
	if model.Aliases["champion"] != 1 {
		t.Errorf("champion on version %d, want 1", model.Aliases["champion"])
	}
}

// TestCanaryForcedPromotion: a person's promote of a canary whose version
// was tagged FAILED is refused (409 naming the status); an sre may not
// force it (403), an admin may, and then champion moves, the set_alias
// event records the force and the canary's reason says it was forced.
func TestCanaryForcedPromotion(t *testing.T) {
	g := startGateway(t, withKeys(roleKeys...))
	g.apiKey = "k-ds"
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.Linear)
	g.apiKey = "k-sre"
	g.setAlias("linear", "champion", 1)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear@champion", "weight": 100}]}`, 201)
	g.must("POST", "/v1/endpoints/churn/canary", `{"model": "linear/2", "steps": [50, 100], "interval": "1h"}`, 200)
	g.apiKey = "k-ds"
	g.must("PUT", "/v1/models/linear/versions/2/tags/validation_status", `{"value": "FAILED"}`, 200)

	g.apiKey = "k-sre"
	if msg := g.must("POST", "/v1/endpoints/churn/canary/promote", "", 409).errorMessage(t); !strings.Contains(msg, "version 2 is FAILED") {
		t.Errorf("refusal %q does not name the status", msg)
	}
	if msg := g.must("POST", "/v1/endpoints/churn/canary/promote", `{"force": true}`, 403).errorMessage(t); !strings.Contains(msg, "lacks the admin role") {
		t.Errorf("sre forcing: %q", msg)
	}
	g.must("POST", "/v1/endpoints/churn/canary/pause", `{"force": true}`, 403)
	g.apiKey = "k-admin"
	g.must("POST", "/v1/endpoints/churn/canary/pause", `{"force": true}`, 400)
	g.must("POST", "/v1/endpoints/churn/canary/promote", `{"forse": true}`, 400)
	g.must("POST", "/v1/endpoints/churn/canary/promote", `{"force": true}`, 200)

	e := g.endpoint()
	if e.Canary.State != router.CanaryPromoted || !strings.Contains(e.Canary.Reason, "promoted by root, forced past: ") {
		t.Errorf("canary %s, reason %q; want promoted, saying it was forced", e.Canary.State, e.Canary.Reason)
	}
	ev := g.lastAudit("linear")
	if ev.Action != registry.ActionSetAlias || ev.Actor != "root" ||
		string(ev.After) != `{"alias":"champion","version":2,"forced":true,"status":"FAILED","required":"PASSED"}` {
		t.Errorf("last event %s by %s: %s, want the forced set_alias by root", ev.Action, ev.Actor, ev.After)
	}
}
