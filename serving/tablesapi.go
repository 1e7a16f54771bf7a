package serving

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/serving/tables"
)

// inferenceTables returns the writer, or explains that the tables are off.
func (s *Server) inferenceTables() (Tables, error) {
	if s.tables == nil {
		return nil, notReady("the inference tables are off (inference_tables.enabled)")
	}
	return s.tables, nil
}

// listTables lists the complete Parquet files with their row counts, and
// the writer's counters.
func (s *Server) listTables(c *fiber.Ctx) error {
	t, err := s.inferenceTables()
	if err != nil {
		return err
	}
	files, err := tables.List(s.tablesDir)
	if err != nil {
		return err
	}
	if files == nil {
		files = []tables.File{}
	}
	return c.JSON(fiber.Map{"dir": s.tablesDir, "files": files, "writer": t.Stats()})
}

// deleteEntity removes every row of an entity ({"column": "user_id",
// "value": "u1"}) from the inference tables.
func (s *Server) deleteEntity(c *fiber.Ctx) error {
	t, err := s.inferenceTables()
	if err != nil {
		return err
	}
	var body struct {
		Column string `json:"column"`
		Value  string `json:"value"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v", err)
	}
	if body.Column == "" || body.Value == "" {
		return invalidInput(`request body: give the entity, e.g. {"column": "user_id", "value": "u1"}`)
	}
	// Predictions answered before the request are deleted too: the
	// recorder hands them to the writer first.
	if err := s.recorder.flush(c.UserContext()); err != nil {
		return err
	}
	removed, err := t.DeleteEntity(c.UserContext(), body.Column, body.Value)
	if err != nil {
		return err
	}
	s.log.InfoContext(c.UserContext(), "entity deleted from the inference tables", "column", body.Column, "rows", removed, "actor", actor(c))
	return c.JSON(fiber.Map{"removed": removed})
}

// maxLabels bounds one labels request.
const maxLabels = 100000

// postLabels appends ground-truth labels, joined to predictions by request
// id: {"labels": [{"request_id": "...", "label": 1}]}.
func (s *Server) postLabels(c *fiber.Ctx) error {
	t, err := s.inferenceTables()
	if err != nil {
		return err
	}
	labels, err := decodeLabels(c.Body(), time.Now())
	if err != nil {
		return err
	}
	if err := t.AppendLabels(labels); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"written": len(labels)})
}

// decodeLabels reads a labels request; every error names the label at fault.
func decodeLabels(body []byte, now time.Time) ([]tables.Label, error) {
	var req struct {
		Labels []struct {
			RequestID string   `json:"request_id"`
			Label     *float64 `json:"label"`
		} `json:"labels"`
	}
	if err := jsonerr.Decode(body, &req); err != nil {
		return nil, invalidInput("request body: %v", err)
	}
	if len(req.Labels) == 0 || len(req.Labels) > maxLabels {
		return nil, invalidInput("labels: want 1 to %d labels, got %d", maxLabels, len(req.Labels))
	}
	labels := make([]tables.Label, len(req.Labels))
	for i, l := range req.Labels {
		if l.RequestID == "" || len(l.RequestID) > 256 {
			return nil, invalidInput("labels[%d].request_id: required, at most 256 bytes", i)
		}
		if l.Label == nil {
			return nil, invalidInput("labels[%d].label: required, a number", i)
		}
		labels[i] = tables.Label{RequestID: l.RequestID, Label: *l.Label, Timestamp: now}
	}
	return labels, nil
}
