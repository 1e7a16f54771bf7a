package serving_test

import (
	"testing"

	"github.com/mlgate/mlgate/featurestore"
)

func TestWhoami(t *testing.T) {
	g := startGateway(t, withKeys(roleKeys...))
	cases := []struct {
		secret string
		status int
		name   string
		roles  []string
	}{
		{"k-predict", 200, "app", []string{"predict"}},
		{"k-sre", 200, "sam", []string{"sre"}},
		{"k-admin", 200, "root", []string{"admin"}},
		{"nope", 401, "", nil},
		{"", 401, "", nil},
	}
	for _, c := range cases {
		g.apiKey = c.secret
		r := g.do("GET", "/v1/whoami", "", nil)
		if r.status != c.status {
			t.Errorf("key %q: status %d %s, want %d", c.secret, r.status, r.body, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		var who struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
		}
		r.decode(t, &who)
		if who.Name != c.name || len(who.Roles) != len(c.roles) || who.Roles[0] != c.roles[0] {
			t.Errorf("key %q: whoami %+v, want %s %v", c.secret, who, c.name, c.roles)
		}
	}

	anon := startGateway(t)
	var who struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}
	anon.do("GET", "/v1/whoami", "", nil).decode(t, &who)
	if who.Name != "anonymous" || len(who.Roles) != 1 || who.Roles[0] != "admin" {
		t.Errorf("without keys: whoami %+v, want anonymous [admin]", who)
	}
}

func TestStatus(t *testing.T) {
	g := startGateway(t)
	var st struct {
		Breakers []featurestore.BreakerState `json:"breakers"`
		Queues   []struct {
			Name            string
			Depth, Capacity int
		} `json:"queues"`
		Tables struct {
			Enabled, Healthy bool
		} `json:"tables"`
	}
	g.do("GET", "/v1/status", "", nil).decode(t, &st)
	if len(st.Breakers) == 0 {
		t.Errorf("status has no breaker: %+v", st)
	}
	for _, b := range st.Breakers {
		if b.Name == "" || b.State != "closed" {
			t.Errorf("breaker %+v, want a named closed breaker", b)
		}
	}
	names := map[string]bool{}
	for _, q := range st.Queues {
		names[q.Name] = true
		if q.Capacity <= 0 || q.Depth < 0 || q.Depth > q.Capacity {
			t.Errorf("queue %+v", q)
		}
	}
	for _, want := range []string{"recorder", "shadows"} {
		if !names[want] {
			t.Errorf("status has no %s queue: %+v", want, st.Queues)
		}
	}
	if st.Tables.Enabled != names["inference tables"] || !st.Tables.Healthy {
		t.Errorf("tables %+v with queues %+v", st.Tables, st.Queues)
	}
}
