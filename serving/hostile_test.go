package serving_test

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/recovery"
)

// hostileBodies are what a careless or hostile client sends instead of the
// body a route expects.
func hostileBodies() map[string][]byte {
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	deepObj := strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000)
	return map[string][]byte{
		"empty":            nil,
		"null":             []byte("null"),
		"array":            []byte("[]"),
		"object":           []byte("{}"),
		"number":           []byte("12345678901234567890123456789"),
		"negative":         []byte("-1"),
		"string":           []byte(`"x"`),
		"true":             []byte("true"),
		"deep arrays":      []byte(deep),
		"deep objects":     []byte(deepObj),
		"truncated":        []byte(`{"inputs": [{"name": "x", "shape": [1,`),
		"not json":         []byte("\x00\xff\xfe<html>"),
		"nulls everywhere": []byte(`{"inputs": null, "outputs": null, "entities": null, "features": null, "rows": null, "variants": null, "labels": null, "baseline": null, "webhook": null, "request": null, "id": null, "unit": null}`),
		"wrong types":      []byte(`{"inputs": "x", "outputs": 1, "entities": [], "features": {}, "rows": "r", "variants": 7, "labels": {}, "baseline": [], "webhook": 1, "window": {}, "thresholds": "t", "entities_": null}`),
		"huge numbers":     []byte(`{"inputs": [{"name": "x", "shape": [9223372036854775807, 9223372036854775807], "datatype": "FP32", "data": [1e999]}], "rows": [{"id": 1e400}], "weight": 1e308}`),
		"negative shape":   []byte(`{"inputs": [{"name": "x", "shape": [-1, -4], "datatype": "FP32", "data": []}]}`),
		"long strings":     []byte(`{"id": "` + strings.Repeat("i", 300_000) + `", "name": "` + strings.Repeat("n", 300) + `", "model": "` + strings.Repeat("m", 300) + `"}`),
		"many fields":      manyFields(20_000),
		"duplicate keys":   []byte(`{"inputs": [], "inputs": null, "variants": [], "variants": {}}`),
		"odd variants":     []byte(`{"variants": [{"name": "", "model": "", "weight": -5}, {"name": null, "model": "a@", "weight": 1e9}], "canary": {"steps": null}}`),
		"odd view":         []byte(`{"entities": ["` + strings.Repeat("e", 300) + `"], "features": [{"name": "../x", "type": "float"}, {"name": null}], "ttl": "-1s", "store": "nope"}`),
		"odd monitor":      []byte(`{"endpoint": "../../etc", "baseline": {"from": "x"}, "window": "0s", "features": [null], "webhook": {"url": "http://169.254.169.254/"}}`),
		"odd labels":       []byte(`{"labels": [null, {}, {"request_id": null, "label": {}}]}`),
		"odd rows":         []byte(`{"rows": [null, [], {"id": {}}, {"id": null}]}`),
		"odd online":       []byte(`{"features": [null, "", ":", "a:b:c"], "entities": {"": [null]}}`),
		"odd canary":       []byte(`{"model": "x/0", "steps": [{"weight": -1, "duration": "-5m"}], "analysis": {"max_error_rate": "x"}}`),
	}
}

func manyFields(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// hostileNames stand in for each parameter of a route's path.
var hostileNames = []string{
	strings.Repeat("x", 300),
	"..%2F..%2Fetc%2Fpasswd",
	"%00",
	".hidden",
	"%F0%9F%98%80",
	"a%20b",
	"-1",
	"99999999999999999999",
	"name@",
	"%25",
}

// TestHostileRequests sends every hostile body to every route, with its
// path parameters both real and hostile: no answer may be a 5xx, and no
// handler may panic. Routes are read from the server, so a route added
// later is covered too.
func TestHostileRequests(t *testing.T) {
	g := startGateway(t)
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	if r := g.upload("linear", raw, `{"tags": {"validation_status": "PASSED"}, "baseline": `+linearBaseline(t)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.setAlias("linear", "champion", 1)
	for _, setup := range []struct{ method, path, body string }{
		{"PUT", "/v1/feature-views/v", `{"entities": ["id"], "features": [{"name": "f", "type": "float"}]}`},
		{"PUT", "/v1/endpoints/e", `{"variants": [{"name": "a", "model": "linear/1", "weight": 100}]}`},
		{"PUT", "/v1/monitors/m", `{"model": "linear", "baseline": "model", "window": "1m", "thresholds": {"psi": 0.2}}`},
	} {
		if r := g.do(setup.method, setup.path, "application/json", []byte(setup.body)); r.status >= 300 {
			t.Fatalf("%s %s: %d %s", setup.method, setup.path, r.status, r.body)
		}
	}
	real := map[string]string{
		"model": "linear", "name": "linear", "version": "1", "alias": "champion", "key": "owner",
		"view": "v", "endpoint": "e", "command": "pause", "monitor": "m",
	}
	bodies := hostileBodies()
	before := recovery.Count("http handler")
	requests := 0
	routes := g.server.App().GetRoutes(true)
	slices.SortStableFunc(routes, func(a, b fiber.Route) int { // deletions last, so the others find what they name
		return cmp.Compare(boolInt(a.Method == "DELETE"), boolInt(b.Method == "DELETE"))
	})
	for _, route := range routes {
		if route.Method == "HEAD" || route.Path == "/" {
			continue
		}
		for i, path := range routePaths(route.Path, real) {
			for name, body := range bodies {
				if i > 0 && name != "object" && name != "null" {
					continue // a hostile name: two bodies are enough
				}
				for _, ct := range []string{"application/json", "multipart/form-data; boundary=x", ""} {
					status, answer, err := g.try(route.Method, path, ct, body)
					requests++
					if err != nil || status >= 500 {
						t.Errorf("%s %s, body %s, Content-Type %q: %d %.300s %v", route.Method, path, name, ct, status, answer, err)
					}
				}
			}
		}
	}
	if n := recovery.Count("http handler") - before; n > 0 {
		t.Errorf("%d handlers panicked", n)
	}
	t.Logf("%d hostile requests, none answered 5xx", requests)
}

// routePaths fills a route template's parameters with real names, then each
// parameter in turn with each hostile name.
func routePaths(template string, real map[string]string) []string {
	segs := strings.Split(template, "/")
	fill := func(hostile int, with string) string {
		out := make([]string, len(segs))
		for i, s := range segs {
			p, ok := strings.CutPrefix(s, ":")
			switch {
			case !ok:
				out[i] = s
			case i == hostile:
				out[i] = with
			default:
				out[i] = url.PathEscape(real[p])
			}
		}
		return strings.Join(out, "/")
	}
	paths := []string{fill(-1, "")}
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			for _, h := range hostileNames {
				paths = append(paths, fill(i, h))
			}
		}
	}
	return paths
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// try sends a request and returns its answer or the error that stopped it.
func (g *gateway) try(method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, g.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}
