package serving_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/recovery"
	"github.com/mlgate/mlgate/serving"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// deflated is b compressed as HTTP's deflate is meant (zlib), or as some
// clients send it (raw DEFLATE).
func deflated(t *testing.T, b []byte, zlibFormat bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser = zlib.NewWriter(&buf)
	if !zlibFormat {
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// send makes a request with the given headers; a nil body with chunked set
// sends body in chunks (no Content-Length).
func (g *gateway) send(method, path string, header map[string]string, body []byte, chunked bool) response {
	g.t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(bytes.NewReader(body)) // hides the length: net/http sends it chunked
	}
	req, err := http.NewRequest(method, g.url+path, r)
	if err != nil {
		g.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: raw}
}

// TestBodyLimits: each route takes at most its limit, refused before the
// body is read when its length is declared; compressed bodies are decoded
// within the same limit.
func TestBodyLimits(t *testing.T) {
	g := startGateway(t, withMaxModelBytes(1<<20), withConfig(func(c *config.Config) { c.Server.MaxBodyBytes = 64 << 10 }))
	g.register("linear", modelzoo.Linear)
	infer := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	big := append(append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), 100<<10)...), `"}`...)
	bomb := gzipped(t, bytes.Repeat([]byte(" "), 10<<20)) // 10 KiB that inflate to 10 MiB
	jsonCT := map[string]string{"Content-Type": "application/json"}
	withEnc := func(enc string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "Content-Encoding": enc}
	}
	model := bytes.Repeat([]byte{1}, 2<<20)
	ct, upload := multipartBody(model, "")()
	chunkedCT, chunked := multipartBody(mustRead(t, modelzoo.Path(modelzoo.Linear)), "")()
	tests := []struct {
		name    string
		path    string
		header  map[string]string
		body    []byte
		chunked bool
		status  int
		want    string
	}{
		{"plain", "/v2/models/linear/infer", jsonCT, infer, false, 200, `"outputs"`},
		{"chunked", "/v2/models/linear/infer", jsonCT, infer, true, 200, `"outputs"`},
		{"gzip", "/v2/models/linear/infer", withEnc("gzip"), gzipped(t, infer), false, 200, `"outputs"`},
		{"deflate (zlib)", "/v2/models/linear/infer", withEnc("deflate"), deflated(t, infer, true), false, 200, `"outputs"`},
		{"deflate (raw)", "/v2/models/linear/infer", withEnc("deflate"), deflated(t, infer, false), false, 200, `"outputs"`},
		{"over the limit", "/v2/models/linear/infer", jsonCT, big, false, 413, "larger than the limit of 65536 bytes (server.max_body_bytes)"},
		{"chunked over the limit", "/v2/models/linear/infer", jsonCT, big, true, 413, "server.max_body_bytes"},
		{"gzip bomb", "/v2/models/linear/infer", withEnc("gzip"), bomb, false, 413, "decodes (Content-Encoding gzip) to more than the limit"},
		{"broken gzip", "/v2/models/linear/infer", withEnc("gzip"), infer, false, 400, "Content-Encoding gzip"},
		{"unknown encoding", "/v2/models/linear/infer", withEnc("br"), infer, false, 415, `\"br\": not supported; send the body as it is`},
		{"upload over max_model_bytes", "/v1/models/m/versions", map[string]string{"Content-Type": ct}, upload, false, 413, "(registry.max_model_bytes)"},
		{"chunked upload over max_model_bytes", "/v1/models/m/versions", map[string]string{"Content-Type": ct}, upload, true, 413, "(registry.max_model_bytes)"},
		{"chunked upload", "/v1/models/chunked/versions", map[string]string{"Content-Type": chunkedCT}, chunked, true, 201, `"version":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.send("POST", tt.path, tt.header, tt.body, tt.chunked)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%d %s, want %d containing %q", r.status, r.body, tt.status, tt.want)
			}
		})
	}
}

// TestAuthBeforeBody: a caller without a key is refused once the headers
// and two bytes of a body declared as 100 MB have come; nothing waits for
// the rest.
func TestAuthBeforeBody(t *testing.T) {
	g := startGateway(t, withKeys(auth.Key{Name: "root", SHA256: keyFor("secret"), Roles: []auth.Role{auth.Admin}}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second)) // the test's read timeout is 10 s: an answer before it came from the key check
	fmt.Fprintf(conn, "POST /v1/models/m/versions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000000\r\n\r\n--")
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("no answer before the body: %v (%q)", err, answer)
	}
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 401")) || !bytes.Contains(answer, []byte("Connection: close")) {
		t.Errorf("answer %q, want a 401 that closes the connection", answer)
	}
}

// TestBodyMemoryBudget: bodies beyond server.max_body_memory at once wait
// their turn: 503 with Retry-After.
func TestBodyMemoryBudget(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) { c.Server.MaxBodyMemory = 100 }))
	g.register("linear", modelzoo.Linear)
	small := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	if r := g.do("POST", "/v2/models/linear/infer", "application/json", small); r.status != 200 {
		t.Fatalf("a body within the budget: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("POST", g.url+"/v2/models/linear/infer", bytes.NewReader(append(small, bytes.Repeat([]byte(" "), 100)...)))
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "server.max_body_memory") {
		t.Errorf("over the budget: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestPanicIsA500: a handler that panics answers 500 with the request id,
// the panic is counted, and the server goes on.
func TestPanicIsA500(t *testing.T) {
	g := startGateway(t)
	srv := serving.New(serving.Options{MaxBodyBytes: 1 << 20}, serving.Deps{Registry: g.reg, Catalog: g.catalog, Auth: g.authn, Log: g.log})
	srv.App().Get("/test/panic", func(*fiber.Ctx) error {
		var m map[string]int
		m["x"] = 1 // the nil-map assignment that once took the process down
		return nil
	})
	call := func(path, requestID string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		if requestID != "" {
			req.Header.Set(serving.HeaderRequestID, requestID)
		}
		resp, err := srv.App().Test(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	before := recovery.Count("http handler")
	if code, body := call("/test/panic", "req-42"); code != 500 || !strings.Contains(body, "request id req-42") || strings.Contains(body, "nil map") {
		t.Errorf("panic answered %d %s, want 500 naming the request id and not the fault", code, body)
	}
	if code, body := call("/test/panic", ""); code != 500 || !strings.Contains(body, "request id ") {
		t.Errorf("panic without a request id answered %d %s", code, body)
	}
	if n := recovery.Count("http handler") - before; n != 2 {
		t.Errorf("%d panics counted, want 2", n)
	}
	if code, _ := call("/v2/health/live", ""); code != 200 {
		t.Errorf("after the panics, liveness is %d", code)
	}
}

// TestErrorsHideDataDir: no error message shows where the server keeps its
// data, however a store's error spells it.
func TestErrorsHideDataDir(t *testing.T) {
	g := startGateway(t)
	srv := serving.New(serving.Options{MaxBodyBytes: 1 << 20, DataDir: g.dataDir}, serving.Deps{Registry: g.reg, Catalog: g.catalog, Auth: g.authn, Log: g.log})
	srv.App().Get("/test/fail", func(*fiber.Ctx) error {
		return fmt.Errorf("open %s/registry.db: input/output error", g.dataDir)
	})
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/test/fail", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || strings.Contains(string(body), g.dataDir) || !strings.Contains(string(body), "open [data_dir]/registry.db") {
		t.Errorf("answer %d %s: want the data directory written [data_dir]", resp.StatusCode, body)
	}
}
