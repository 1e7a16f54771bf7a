package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestFeastBodies(t *testing.T) {
	b := feastBodies(feast1x10, 100)
	if len(b) != 100 || !strings.HasPrefix(string(b[0]), `{"features":["feast10:f0","feast10:f1",`) || !strings.HasSuffix(string(b[99]), `"entities":{"driver_id":[100]}}`) {
		t.Fatalf("1x10: %d bodies, %s … %s", len(b), b[0], b[99])
	}
	b = feastBodies(feast100x50, 150)
	var req struct {
		Features []string `json:"features"`
		Entities struct {
			DriverID []int `json:"driver_id"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(b[1], &req); err != nil {
		t.Fatal(err)
	}
	// Drivers 1..150 in turn: the second body starts at 101 and wraps to 1.
	if len(b) != 1000 || len(req.Features) != 50 || len(req.Entities.DriverID) != 100 || req.Entities.DriverID[0] != 101 || req.Entities.DriverID[50] != 1 {
		t.Fatalf("100x50: %d bodies, %d features, drivers %v", len(b), len(req.Features), req.Entities.DriverID)
	}
}

// fakeFeastServers answer as mlgate (rows) and feast serve (columns in an
// order of their own, the entity's first) do, with value(u, j) for driver u's
// feature j.
func fakeFeastServers(t *testing.T, fc feastCase, value func(u, j int) float64) (mlgate, feast string) {
	parse := func(r *http.Request) []int {
		var req struct {
			Entities struct {
				DriverID []int `json:"driver_id"`
			} `json:"entities"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		return req.Entities.DriverID
	}
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Values   []float64 `json:"values"`
			Statuses []string  `json:"statuses"`
		}
		var rows []row
		for _, u := range parse(r) {
			var rw row
			for j := range fc.features {
				rw.Values, rw.Statuses = append(rw.Values, value(u, j)), append(rw.Statuses, "PRESENT")
			}
			rows = append(rows, rw)
		}
		json.NewEncoder(w).Encode(map[string]any{"rows": rows})
	}))
	f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := parse(r)
		type col struct {
			Values   []any    `json:"values"`
			Statuses []string `json:"statuses"`
		}
		names := []string{"driver_id"}
		idCol := col{}
		for _, u := range ids {
			idCol.Values, idCol.Statuses = append(idCol.Values, u), append(idCol.Statuses, "PRESENT")
		}
		cols := []col{idCol}
		for j := fc.features - 1; j >= 0; j-- {
			names = append(names, "f"+strconv.Itoa(j))
			var c col
			for _, u := range ids {
				c.Values, c.Statuses = append(c.Values, value(u, j)), append(c.Statuses, "PRESENT")
			}
			cols = append(cols, c)
		}
		json.NewEncoder(w).Encode(map[string]any{"results": cols, "metadata": map[string]any{"feature_names": names}})
	}))
	t.Cleanup(m.Close)
	t.Cleanup(f.Close)
	return strings.TrimPrefix(m.URL, "http://"), strings.TrimPrefix(f.URL, "http://")
}

func TestCheckFeastAnswers(t *testing.T) {
	fc := feastCase{name: "t", view: "v", features: 3, entities: 4}
	bodies := feastBodies(fc, 200)
	m, f := fakeFeastServers(t, fc, feastValue)
	if err := checkFeastAnswers(m, f, fc, bodies); err != nil {
		t.Fatalf("right answers: %v", err)
	}
	wrong := func(u, j int) float64 {
		if u == 7 && j == 2 {
			return 0.5
		}
		return feastValue(u, j)
	}
	m2, f2 := fakeFeastServers(t, fc, wrong)
	if err := checkFeastAnswers(m2, f, fc, bodies); err == nil || !strings.Contains(err.Error(), "mlgate answers driver 7 f2") {
		t.Errorf("mlgate wrong: %v", err)
	}
	if err := checkFeastAnswers(m, f2, fc, bodies); err == nil || !strings.Contains(err.Error(), "feast serve answers driver 7 f2") {
		t.Errorf("feast wrong: %v", err)
	}
}

func TestFeastPythonMissing(t *testing.T) {
	t.Setenv("TEST_FEAST_PYTHON", "")
	t.Chdir(t.TempDir()) // no .cache/feastenv
	t.Setenv("CI", "")
	if _, err := feastPython(); !errors.Is(err, errSkip) {
		t.Errorf("outside CI: %v, want a skip", err)
	}
	t.Setenv("CI", "true")
	if _, err := feastPython(); err == nil || errors.Is(err, errSkip) {
		t.Errorf("in CI: %v, want a failure", err)
	}
}
