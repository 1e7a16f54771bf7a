package serving

import (
	"cmp"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/sony/gobreaker/v2"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/auth"
)

// whoami answers the name and roles of the caller's key, so that a client
// (the console) shows only what the key may do: {"name": ..., "roles": [...]}.
// With no keys configured the caller is anonymous and holds admin.
func (s *Server) whoami(c *fiber.Ctx) error {
	id := caller(c)
	roles := id.Roles()
	if roles == nil {
		roles = []auth.Role{}
	}
	return c.JSON(fiber.Map{"name": id.Name, "roles": roles})
}

// queueStatus is how full one of the gateway's queues is.
type queueStatus struct {
	Name     string `json:"name"`
	Depth    int    `json:"depth"`
	Capacity int    `json:"capacity"`
}

// tablesStatus is the inference-table writer's health: Error is the I/O
// error that makes rows not durable, while it lasts.
type tablesStatus struct {
	Enabled bool   `json:"enabled"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// status answers the state of every circuit breaker (the online stores' and
// the shadow models') and the depth of the queues between a request and
// what it sets off: what an SRE looks at when predictions degrade.
func (s *Server) status(c *fiber.Ctx) error {
	var breakers []featurestore.BreakerState
	if s.features != nil {
		breakers = s.features.Breakers()
	}
	breakers = append(breakers, s.shadows.breakerStates()...)
	if breakers == nil {
		breakers = []featurestore.BreakerState{}
	}
	queues := []queueStatus{
		{"recorder", len(s.recorder.jobs), cap(s.recorder.jobs)},
		{"shadows", len(s.shadows.jobs), cap(s.shadows.jobs)},
	}
	tables := tablesStatus{Enabled: s.tables != nil, Healthy: true}
	if s.tables != nil {
		queues = append(queues, queueStatus{"inference tables", s.tables.QueueLen(), s.tables.QueueCap()})
		if err := s.tables.Healthy(); err != nil {
			tables.Healthy, tables.Error = false, s.hidePaths(err.Error())
		}
	}
	return c.JSON(fiber.Map{"breakers": breakers, "queues": queues, "tables": tables})
}

// breakerStates returns the state of each shadow model's breaker, named
// "shadow <model>:<version>", in name order.
func (sh *shadows) breakerStates() []featurestore.BreakerState {
	var out []featurestore.BreakerState
	sh.breakers.Range(func(_, v any) bool {
		b := v.(*gobreaker.CircuitBreaker[struct{}])
		out = append(out, featurestore.BreakerState{Name: b.Name(), State: b.State().String()})
		return true
	})
	slices.SortFunc(out, func(a, b featurestore.BreakerState) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
