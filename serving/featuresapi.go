package serving

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/jsonerr"
)

// featureStore returns the feature store, or explains that there is none.
func (s *Server) featureStore() (*featurestore.Service, error) {
	if s.features == nil {
		return nil, notReady("this gateway has no feature store")
	}
	return s.features, nil
}

func (s *Server) listViews(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"views": fs.Views()})
}

func (s *Server) getView(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	v, err := fs.View(c.Params("view"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// viewBody is what PUT /v1/feature-views/{name} takes.
type viewBody struct {
	Entities []string               `json:"entities"`
	Features []featurestore.Feature `json:"features"`
	TTL      featurestore.Duration  `json:"ttl"`
	Store    string                 `json:"store"`
	CacheTTL featurestore.Duration  `json:"cache_ttl"`
	// Feast says where Feast keeps a view of store feast-redis.
	Feast *featurestore.FeastSource `json:"feast"`
}

func (s *Server) putView(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	var b viewBody
	if err := jsonerr.Decode(c.Body(), &b); err != nil {
		return invalidInput("request body: %v", err)
	}
	v := &featurestore.View{Name: param(c, "view"), Entities: b.Entities, Features: b.Features, TTL: b.TTL, Store: b.Store, CacheTTL: b.CacheTTL, Feast: b.Feast}
	v, created, err := fs.PutView(c.UserContext(), actor(c), v)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(v)
}

func (s *Server) deleteView(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	if err := fs.DeleteView(c.UserContext(), actor(c), param(c, "view")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) writeRows(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	v, err := fs.View(c.Params("view"))
	if err != nil {
		return err
	}
	rows, err := featurestore.DecodeRows(v, c.Body(), time.Now(), s.limits.rows())
	if err != nil {
		return err
	}
	// Writes are never degraded: a store that is unavailable (its breaker
	// open, failing, or not answering within online_store.write_timeout) is
	// a 503 the caller retries, naming the store's kind and no more.
	if err := fs.WriteRows(c.UserContext(), v.Name, rows); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"written": len(rows)})
}

// onlineRequest is what POST /v1/features/online takes.
type onlineRequest struct {
	Features []string                     `json:"features"`
	Entities map[string][]json.RawMessage `json:"entities"`
}

type onlineRow struct {
	Entities        map[string]string     `json:"entities"`
	Values          []any                 `json:"values"`
	Statuses        []featurestore.Status `json:"statuses"`
	EventTimestamps []*time.Time          `json:"event_timestamps"`
}

func (s *Server) readOnline(c *fiber.Ctx) error {
	fs, err := s.featureStore()
	if err != nil {
		return err
	}
	req, err := decodeOnlineRequest(c.Body(), s.limits)
	if err != nil {
		return err
	}
	entities, err := entityColumns(req.Entities)
	if err != nil {
		return err
	}
	res, err := fs.Online(c.UserContext(), req.Features, entities)
	if err != nil {
		return err
	}
	rows := make([]onlineRow, len(res.Rows))
	for i, r := range res.Rows {
		out := onlineRow{Entities: r.Entities, Values: make([]any, len(r.Values)), Statuses: r.Statuses, EventTimestamps: make([]*time.Time, len(r.Values))}
		for j, v := range r.Values {
			out.Values[j] = v.JSON()
			if !r.EventTS[j].IsZero() {
				out.EventTimestamps[j] = &r.EventTS[j]
			}
		}
		rows[i] = out
	}
	answer := fiber.Map{"features": res.Features, "rows": rows}
	if len(res.Degraded) > 0 {
		// A store could not answer: its values came from the cache or read
		// as not found.
		answer["degraded"] = true
	}
	return c.JSON(answer)
}

// decodeOnlineRequest parses an online read, holding its entity columns to
// lim, and its answer (rows × features values) to limits.max_tensor_elements:
// the answer is in effect a table of that many values. The number of
// features is bounded by the feature store (featurestore.MaxOnlineFeatures).
func decodeOnlineRequest(body []byte, lim limits) (*onlineRequest, error) {
	var req onlineRequest
	if err := jsonerr.Decode(body, &req); err != nil {
		return nil, invalidInput("request body: %v", err)
	}
	if err := lim.checkColumns("entities", req.Entities); err != nil {
		return nil, err
	}
	rows := 0
	for _, col := range req.Entities {
		rows = max(rows, len(col))
	}
	if n := int64(rows) * int64(len(req.Features)); n > lim.maxElements {
		return nil, errkind.New(errTooLarge, "features × entities: %d features for %d rows is %d values, more than limits.max_tensor_elements (%d)",
			len(req.Features), rows, n, lim.maxElements)
	}
	return &req, nil
}

// entityColumns reads entity columns: arrays of strings or numbers.
func entityColumns(raw map[string][]json.RawMessage) (map[string][]string, error) {
	out := make(map[string][]string, len(raw))
	for col, vals := range raw {
		s := make([]string, len(vals))
		for i, v := range vals {
			e, err := featurestore.EntityFromJSON(v)
			if err != nil {
				return nil, invalidInput("entities.%s[%d]: %v", col, i, err)
			}
			s[i] = e
		}
		out[col] = s
	}
	return out, nil
}
