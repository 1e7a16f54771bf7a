package serving

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/onnx"
)

// Headers of endpoint routing: a caller may pin the variant or give the
// unit that picks it; the answer names the variant and model that served.
const (
	HeaderVariant = "X-Mlgate-Variant"
	HeaderUnit    = "X-Mlgate-Unit"
	HeaderModel   = "X-Mlgate-Model"
)

// endpoints returns the router, or explains that there is none.
func (s *Server) endpoints() (*router.Service, error) {
	if s.router == nil {
		return nil, notReady("this gateway has no endpoints")
	}
	return s.router, nil
}

// refArgs turns a model reference into the catalog's model and version
// reference.
func refArgs(ref router.ModelRef) (model, version string) {
	switch {
	case ref.Alias != "":
		return ref.Name, ref.Alias
	case ref.Version > 0:
		return ref.Name, strconv.Itoa(ref.Version)
	}
	return ref.Name, ""
}

// maxUnitBytes bounds a unit, the key whose hash picks a variant: a user
// or session id, not a document.
const maxUnitBytes = 256

// endpointPredict routes a predict request through an endpoint's policy.
func (s *Server) endpointPredict(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	req, err := decodePredictRequest(c.Body(), s.limits)
	if err != nil {
		return err
	}
	r, ok := rs.Route(c.Params("endpoint"))
	if !ok {
		return router.NotFound("endpoint %q not found", c.Params("endpoint"))
	}
	unit := req.Unit
	if unit == "" {
		if unit, err = unitHeader(c); err != nil {
			return err
		}
	}
	o := observationOf(c)
	o.requestID, o.mintID, o.route, o.pin, o.unit, o.req, o.body, o.encode = req.RequestID, true, r, c.Get(HeaderVariant), unit, req, c.Body(), encodePredictAnswer
	return s.serve(c, o)
}

// unitHeader reads the unit a caller sends in X-Mlgate-Unit.
func unitHeader(c *fiber.Ctx) (string, error) {
	unit := c.Get(HeaderUnit)
	if len(unit) > maxUnitBytes {
		return "", invalidInput("%s: %d bytes is longer than %d", HeaderUnit, len(unit), maxUnitBytes)
	}
	return unit, nil
}

// variantNames lists the variants of r, for an error message.
func variantNames(r *router.Route) string {
	names := make([]string, r.Len())
	for i := range names {
		names[i] = r.Name(i)
	}
	return strings.Join(names, ", ")
}

// predictionMean is the mean of the first numeric output, which canaries
// compare between variants.
func predictionMean(outputs []onnx.Tensor) (float64, bool) {
	for _, t := range outputs {
		if sum, n, ok := numericSum(t.Data); ok && n > 0 {
			return sum / float64(n), true
		}
	}
	return 0, false
}

func numericSum(data any) (float64, int, bool) {
	switch d := data.(type) {
	case []float32:
		return sumOf(d), len(d), true
	case []float64:
		return sumOf(d), len(d), true
	case []int64:
		return sumOf(d), len(d), true
	case []int32:
		return sumOf(d), len(d), true
	}
	return 0, 0, false
}

func sumOf[T float32 | float64 | int32 | int64](s []T) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return sum
}

// endpointView is an endpoint as the API shows it: its policy, revision,
// canary, and the stats of its revision over the fleet (every replica's
// figures merged, or this gateway's alone), with each replica's counts.
type endpointView struct {
	router.Endpoint
	Stats    router.StatsSnapshot     `json:"stats"`
	Replicas map[string]replicaCounts `json:"replicas,omitempty"`
	// Partial says why Stats are this replica's alone, when the fleet's
	// cannot be read.
	Partial string `json:"partial,omitempty"`
}

// replicaCounts are one replica's counts of an endpoint's revision.
type replicaCounts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// fleetFiguresTimeout bounds the read of the other replicas' figures for a
// view; past it, the view shows this replica's.
const fleetFiguresTimeout = time.Second

func view(ctx context.Context, rs *router.Service, name string) (endpointView, error) {
	fctx, cancel := context.WithTimeout(ctx, fleetFiguresTimeout)
	defer cancel()
	f, err := rs.Figures(fctx, name)
	if errors.Is(err, router.ErrUnavailable) {
		// The control plane is away: what this replica counted still helps
		// whoever is looking into it, said to be partial.
		e, r, gerr := rs.Get(name)
		if gerr != nil {
			return endpointView{}, gerr
		}
		return endpointView{Endpoint: e, Stats: r.Stats().Snapshot(), Partial: "this replica's figures only: " + err.Error()}, nil
	}
	if err != nil {
		return endpointView{}, err
	}
	v := endpointView{Endpoint: f.Endpoint, Stats: f.Stats}
	if len(f.Replicas) > 0 {
		v.Replicas = make(map[string]replicaCounts, len(f.Replicas))
	}
	for id, st := range f.Replicas {
		c := replicaCounts{Requests: st.Requests}
		for _, vs := range st.Variants {
			c.Errors += vs.Errors
		}
		v.Replicas[id] = c
	}
	return v, nil
}

func (s *Server) listEndpoints(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	out := []endpointView{}
	for _, r := range rs.Routes() {
		v, err := view(c.UserContext(), rs, r.Endpoint())
		if errors.Is(err, router.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.JSON(fiber.Map{"endpoints": out})
}

func (s *Server) getEndpoint(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	v, err := view(c.UserContext(), rs, c.Params("endpoint"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) putEndpoint(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	name := param(c, "endpoint")
	if err := router.CheckEndpointName(name); err != nil {
		return err
	}
	p, err := router.DecodePolicy(c.Body())
	if err != nil {
		return err
	}
	e, created, err := rs.Put(c.UserContext(), actor(c), name, p)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(e)
}

func (s *Server) deleteEndpoint(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	if err := rs.Delete(c.UserContext(), actor(c), param(c, "endpoint")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) patchTraffic(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	var body struct {
		Weights map[string]int `json:"weights"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v", err)
	}
	if len(body.Weights) == 0 {
		return invalidInput(`weights: give at least one variant's weight, e.g. {"weights": {"control": 50, "treatment": 50}}`)
	}
	e, err := rs.SetWeights(c.UserContext(), actor(c), param(c, "endpoint"), body.Weights)
	if err != nil {
		return err
	}
	return c.JSON(e)
}

func (s *Server) endpointHistory(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	h, err := rs.History(c.UserContext(), c.Params("endpoint"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"revisions": h})
}

func (s *Server) startCanary(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	spec, err := router.DecodeCanarySpec(c.Body())
	if err != nil {
		return err
	}
	e, err := rs.StartCanary(c.UserContext(), actor(c), param(c, "endpoint"), spec)
	if err != nil {
		return err
	}
	return c.JSON(e)
}

// canaryCommand pauses, resumes, promotes or aborts a canary. An admin may
// send {"force": true} with promote, to promote past a protected alias's
// status.
func (s *Server) canaryCommand(c *fiber.Ctx) error {
	rs, err := s.endpoints()
	if err != nil {
		return err
	}
	var body struct {
		Force bool `json:"force"`
	}
	if len(c.Body()) > 0 {
		if err := jsonerr.Decode(c.Body(), &body); err != nil {
			return invalidInput(`request body: %v; send none, or {"force": true} with promote`, err)
		}
	}
	if body.Force {
		if err := mayForce(c); err != nil {
			return err
		}
	}
	e, err := rs.CanaryCommand(c.UserContext(), actor(c), param(c, "endpoint"), param(c, "command"), body.Force)
	if err != nil {
		return err
	}
	return c.JSON(e)
}

// RouterModels lets the router check model references against the catalog
// and move aliases in the registry.
func RouterModels(reg *registry.Registry, catalog *Catalog) router.Models {
	return routerModels{reg, catalog}
}

type routerModels struct {
	reg     *registry.Registry
	catalog *Catalog
}

func (m routerModels) acquire(ctx context.Context, ref router.ModelRef) (*Loaded, error) {
	model, version := refArgs(ref)
	return m.catalog.AcquireLatest(ctx, model, version)
}

func (m routerModels) Check(ctx context.Context, ref router.ModelRef) error {
	l, err := m.acquire(ctx, ref)
	if err != nil {
		return err
	}
	l.Release()
	return nil
}

func (m routerModels) CheckPromotion(ctx context.Context, ref router.ModelRef, alias string) error {
	if _, ok := m.reg.Required(alias); !ok {
		return nil
	}
	l, err := m.acquire(ctx, ref)
	if err != nil {
		return err
	}
	model, n := l.Version.Name, l.Version.Version
	l.Release()
	return m.reg.CheckProtected(ctx, model, alias, n)
}

func (m routerModels) Promote(ctx context.Context, actor string, ref router.ModelRef, alias string, force bool) error {
	model, _ := refArgs(ref)
	l, err := m.acquire(ctx, ref)
	if err != nil {
		return err
	}
	n := l.Version.Version
	l.Release()
	if force {
		return m.reg.ForceAlias(ctx, actor, model, alias, n)
	}
	return m.reg.SetAlias(ctx, actor, model, alias, n)
}
