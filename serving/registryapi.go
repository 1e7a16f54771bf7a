package serving

import (
	"fmt"
	"io"
	"mime/multipart"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/registry"
)

// param returns a route parameter as a string of its own: fiber's point into
// the request buffer, which is reused after the handler returns.
func param(c *fiber.Ctx, name string) string { return utils.CopyString(c.Params(name)) }

func versionParam(c *fiber.Ctx) (int, error) {
	return registry.ParseVersion(c.Params("version"))
}

type modelSummary struct {
	Name          string         `json:"name"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	LatestVersion int            `json:"latest_version"`
	Versions      int            `json:"versions"`
	Aliases       map[string]int `json:"aliases"`
}

func (s *Server) listModels(c *fiber.Ctx) error {
	models, err := s.reg.Models(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]modelSummary, len(models))
	for i, m := range models {
		out[i] = modelSummary{Name: m.Name, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Versions: len(m.Versions), Aliases: m.Aliases}
		if v := m.Latest(); v != nil {
			out[i].LatestVersion = v.Version
		}
		if out[i].Aliases == nil {
			out[i].Aliases = map[string]int{}
		}
	}
	return c.JSON(fiber.Map{"models": out})
}

func (s *Server) getModel(c *fiber.Ctx) error {
	m, err := s.reg.Model(c.UserContext(), c.Params("name"))
	if err != nil {
		return err
	}
	if m.Aliases == nil {
		m.Aliases = map[string]int{}
	}
	if m.Versions == nil {
		m.Versions = []*registry.Version{}
	}
	return c.JSON(m)
}

func (s *Server) getVersion(c *fiber.Ctx) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	v, err := s.reg.Version(c.UserContext(), c.Params("name"), n)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// Multipart parts of a registration.
const (
	partModel    = "model"
	partMetadata = "metadata"
	maxMetadata  = 1 << 20
)

// registerVersion takes a multipart upload: part "model" is the ONNX file,
// optional part "metadata" is JSON, as a plain field or a file.
func (s *Server) registerVersion(c *fiber.Ctx) error {
	name := param(c, "name")
	if err := registry.CheckModelName(name); err != nil {
		return err
	}
	form, err := c.MultipartForm()
	if err != nil {
		return invalidInput("request body: not a readable multipart form (%v); send the ONNX file as part %q and optional JSON metadata as part %q", err, partModel, partMetadata)
	}
	for k := range form.Value {
		if k != partMetadata {
			return invalidInput("multipart part %q: unknown; the parts are %q and %q", k, partModel, partMetadata)
		}
	}
	for k := range form.File {
		if k != partModel && k != partMetadata {
			return invalidInput("multipart part %q: unknown; the parts are %q and %q", k, partModel, partMetadata)
		}
	}
	files := form.File[partModel]
	if len(files) != 1 {
		return invalidInput("multipart part %q: exactly one model file is required, got %d", partModel, len(files))
	}
	if limit := s.reg.MaxModelBytes(); files[0].Size > limit {
		return registry.TooLarge("model file of %d bytes is larger than the limit of %d bytes (registry.max_model_bytes)", files[0].Size, limit)
	}
	raw, err := metadataPart(form)
	if err != nil {
		return err
	}
	md, err := registry.DecodeMetadata(raw)
	if err != nil {
		return err
	}
	f, err := files[0].Open()
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := s.reg.Register(c.UserContext(), actor(c), name, f, md)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func metadataPart(form *multipart.Form) ([]byte, error) {
	values, files := form.Value[partMetadata], form.File[partMetadata]
	switch {
	case len(values)+len(files) > 1:
		return nil, invalidInput("multipart part %q: given more than once", partMetadata)
	case len(values) == 1:
		return []byte(values[0]), nil
	case len(files) == 1:
		if files[0].Size > maxMetadata {
			return nil, registry.TooLarge("multipart part %q: larger than %d bytes", partMetadata, maxMetadata)
		}
		f, err := files[0].Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, maxMetadata))
	}
	return nil, nil
}

func (s *Server) deleteVersion(c *fiber.Ctx) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	if err := s.reg.DeleteVersion(c.UserContext(), actor(c), param(c, "name"), n); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// setAlias points an alias at a version: {"version": 3}. A protected alias
// (registry.protected_aliases) refuses a version without the status it
// requires, unless an admin forces the move: {"version": 3, "force": true}.
func (s *Server) setAlias(c *fiber.Ctx) error {
	var body struct {
		Version *int `json:"version"`
		Force   bool `json:"force"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v", err)
	}
	if body.Version == nil {
		return invalidInput(`request body: field "version" is required, e.g. {"version": 3}`)
	}
	name, alias := param(c, "name"), param(c, "alias")
	set := s.reg.SetAlias
	if body.Force {
		if err := mayForce(c); err != nil {
			return err
		}
		set = s.reg.ForceAlias
	}
	if err := set(c.UserContext(), actor(c), name, alias, *body.Version); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"name": name, "alias": alias, "version": *body.Version})
}

// mayForce refuses, with 403 naming the role, a request asking to force a
// protected alias from a caller without the admin role.
func mayForce(c *fiber.Ctx) error {
	if id := caller(c); !id.Has(auth.Admin) {
		return fmt.Errorf(`%w: key %q lacks the %s role that "force" needs; only an admin may force a protected alias`, errForbidden, id.Name, auth.Admin)
	}
	return nil
}

func (s *Server) deleteAlias(c *fiber.Ctx) error {
	if err := s.reg.DeleteAlias(c.UserContext(), actor(c), param(c, "name"), param(c, "alias")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) setTag(c *fiber.Ctx) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v", err)
	}
	if body.Value == nil {
		return invalidInput(`request body: field "value" is required, e.g. {"value": "PASSED"}`)
	}
	v, err := s.reg.SetTag(c.UserContext(), actor(c), param(c, "name"), n, param(c, "key"), *body.Value)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// audit lists registry and endpoint changes in order, oldest first, or
// newest first with ?order=newest; ?after=SEQ and ?before=SEQ bound the
// sequence numbers (paging on in either order), ?model=NAME, ?endpoint=NAME
// and ?view=NAME filter, ?limit=N (at most 1000) bounds the page.
func (s *Server) audit(c *fiber.Ctx) error {
	q := registry.AuditQuery{Model: c.Query("model"), Endpoint: c.Query("endpoint"), View: c.Query("view"), Limit: defaultAuditLimit}
	for _, p := range []struct {
		name string
		seq  *uint64
	}{{"after", &q.After}, {"before", &q.Before}} {
		if v := c.Query(p.name); v != "" {
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return invalidInput("query parameter %s=%q: must be a sequence number", p.name, v)
			}
			*p.seq = seq
		}
	}
	switch order := c.Query("order"); order {
	case "", "oldest":
	case "newest":
		q.Newest = true
	default:
		return invalidInput("query parameter order=%q: must be oldest or newest", order)
	}
	if v := c.Query("limit"); v != "" {
		limit, err := strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxAuditLimit {
			return invalidInput("query parameter limit=%q: must be a whole number from 1 to %d", v, maxAuditLimit)
		}
		q.Limit = limit
	}
	events, err := s.reg.Audit(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"events": events})
}
