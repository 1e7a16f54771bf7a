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
	removed, err := t.DeleteEntity(c.UserContext(), body.Column, body.Value)
	if err != nil {
		return err
	}
	s.log.Info("entity deleted from the inference tables", "column", body.Column, "rows", removed, "actor", actor(c))
	return c.JSON(fiber.Map{"removed": removed})
}

// maxLabels bounds one labels request.
const maxLabels = 100000

// postLabels appends ground-truth labels, joined to predictions by request
// id: {"labels": [{"request_id": "...", "label": 1}]}.
func (s *Server) postLabels(c *fiber.Ctx) error {
	if _, err := s.inferenceTables(); err != nil {
		return err
	}
	var body struct {
		Labels []struct {
			RequestID string   `json:"request_id"`
			Label     *float64 `json:"label"`
		} `json:"labels"`
	}
	if err := jsonerr.Decode(c.Body(), &body); err != nil {
		return invalidInput("request body: %v", err)
	}
	if len(body.Labels) == 0 || len(body.Labels) > maxLabels {
		return invalidInput("labels: want 1 to %d labels, got %d", maxLabels, len(body.Labels))
	}
	now := time.Now()
	labels := make([]tables.Label, len(body.Labels))
	for i, l := range body.Labels {
		if l.RequestID == "" {
			return invalidInput("labels[%d].request_id: required", i)
		}
		if l.Label == nil {
			return invalidInput("labels[%d].label: required, a number", i)
		}
		labels[i] = tables.Label{RequestID: l.RequestID, Label: *l.Label, Timestamp: now}
	}
	if err := tables.AppendLabels(s.tablesDir, labels); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"written": len(labels)})
}
