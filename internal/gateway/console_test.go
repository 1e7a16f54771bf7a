package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/router"
)

// Keys of the console test: an admin, an application that may only
// predict, and a data scientist.
const (
	consoleAdminKey = "k-console-admin"
	consoleAppKey   = "k-console-app"
	consoleDSKey    = "k-console-ds"
)

// apiClient calls a gateway's API with a key.
type apiClient struct {
	t    *testing.T
	base string
	key  string
}

// do sends body (JSON, or a multipart form when contentType says so) and
// returns the answer, failing the test on a status of 300 or more.
func (c apiClient) do(method, path, contentType string, body io.Reader) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return raw
}

func (c apiClient) json(method, path, body string) []byte {
	c.t.Helper()
	return c.do(method, path, "application/json", strings.NewReader(body))
}

// linearModel is a model file of the zoo that computes y = x·W + b.
type linearModel struct {
	file string
	w    [4][2]float64
	b    [2]float64
}

// The zoo's linear models (see internal/modelzoo/gen.py).
var (
	linearV1 = linearModel{modelzoo.Linear, [4][2]float64{{1, -1}, {2, 0.5}, {-0.5, 1}, {0, 2}}, [2]float64{0.5, -1}}
	linearV2 = linearModel{modelzoo.LinearV2, [4][2]float64{{-1, 1}, {0.5, 2}, {1, -0.5}, {2, 0}}, [2]float64{10, 20}}
)

// register uploads m as a version of model, with a baseline of inputs
// drawn from N(0, 1) and of the outputs m computes from them.
func (c apiClient) register(model string, m linearModel) {
	c.t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	b := drift.NewBaselineBuilder()
	for range 2000 {
		y := m.b
		for i := range 4 {
			x := rng.NormFloat64()
			if err := b.Add(fmt.Sprintf("x[%d]", i), x); err != nil {
				c.t.Fatal(err)
			}
			for j := range 2 {
				y[j] += x * m.w[i][j]
			}
		}
		for j := range 2 {
			if err := b.AddPrediction(fmt.Sprintf("y[%d]", j), y[j]); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	baseline, err := json.Marshal(b.Build(10))
	if err != nil {
		c.t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"description": "churn scorer", "lineage": {"data": "s3://data/churn/2026-11", "code": "git:4f2a9c1", "run_id": "run-17"}, "baseline": `+string(baseline)+`}`)
	raw, err := os.ReadFile(modelzoo.Path(m.file))
	if err != nil {
		c.t.Fatal(err)
	}
	fw, _ := mw.CreateFormFile("model", m.file)
	fw.Write(raw)
	mw.Close()
	c.do("POST", "/v1/models/"+model+"/versions", mw.FormDataContentType(), &body)
}

// label sends n predictions to endpoint and labels them: the first
// output, give or take N(0, 1).
func (c apiClient) label(endpoint string, n int) {
	c.t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	type label struct {
		RequestID string  `json:"request_id"`
		Label     float64 `json:"label"`
	}
	var labels []label
	for range n {
		var out struct {
			RequestID string `json:"request_id"`
			Outputs   struct {
				Y [][]float64 `json:"y"`
			} `json:"outputs"`
		}
		in := fmt.Sprintf(`{"inputs": {"x": [[%g, %g, %g, %g]]}}`, rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64())
		if err := json.Unmarshal(c.json("POST", "/v1/endpoints/"+endpoint+"/predict", in), &out); err != nil || len(out.Outputs.Y) != 1 {
			c.t.Fatalf("predict: %+v %v", out, err)
		}
		labels = append(labels, label{out.RequestID, out.Outputs.Y[0][0] + rng.NormFloat64()})
	}
	body, _ := json.Marshal(map[string]any{"labels": labels})
	c.json("POST", "/v1/labels", string(body))
}

// browser drives one tab of a headless Chromium against the console.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	// shots is where screenshots go; docs, when not "", gets a copy.
	shots, docs string

	mu     sync.Mutex
	faults []string // exceptions and CSP violations of the page
}

// newBrowser starts a headless Chromium with one tab; the test fails if
// the page throws or breaks its Content-Security-Policy.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := testservers.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1366, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base, shots: t.ArtifactDir()}
	if os.Getenv("MLGATE_UPDATE_SCREENSHOTS") == "1" {
		b.docs = filepath.Join("..", "..", "docs", "console")
		if err := os.MkdirAll(b.docs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	messages := chromedp.Console(ctx)
	var reader sync.WaitGroup
	reader.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.faults = append(b.faults, m.String())
				b.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		reader.Wait()
		for _, f := range b.faults {
			t.Errorf("page: %s", f)
		}
	})
	return b
}

// do runs actions, failing the test with what is named what.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait waits until the JavaScript expression is true; if it never is, the
// page's screenshot is saved as failed.png.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		status, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('status')?.textContent`))
		b.capture("failed", b.shots)
		b.t.Fatalf("%s: %v (status line: %q)", what, err, status)
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// startCanary fills and sends the endpoint page's canary form, and
// confirms.
func (b *browser) startCanary(model, steps, interval, alias string) {
	b.t.Helper()
	b.wait("the canary form", `document.querySelector('form.canary-start') !== null`)
	field := func(name string) string { return `form.canary-start input[name="` + name + `"]` }
	b.do("start a canary of "+model,
		chromedp.SetValue(field("model"), model),
		chromedp.SetValue(field("steps"), steps),
		chromedp.SetValue(field("interval"), interval),
		chromedp.SetValue(field("min_requests"), "3"),
		// The field holds "champion" to start with; SetValue cannot empty it.
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, field("promote_alias"), alias)),
		chromedp.Click(`form.canary-start button[type="submit"]`),
		chromedp.WaitVisible("#confirm-ok"),
		chromedp.Click("#confirm-ok"))
}

// canaryState returns the state of endpoint's canary, as the API says.
func canaryState(c apiClient, endpoint string) string {
	c.t.Helper()
	var e struct {
		Canary struct {
			State string `json:"state"`
		} `json:"canary"`
	}
	if err := json.Unmarshal(c.json("GET", "/v1/endpoints/"+endpoint, ""), &e); err != nil {
		c.t.Fatal(err)
	}
	return e.Canary.State
}

// unlabelled lists the controls of the page that have no accessible name.
func (b *browser) unlabelled() []string {
	b.t.Helper()
	return eval[[]string](b, `[...document.querySelectorAll('input, select, button, a')]
		.filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.textContent.trim())
		.map((el) => el.outerHTML)`)
}

// open shows the console's route (#/...).
func (b *browser) open(route string) {
	b.t.Helper()
	b.do("open "+route, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", route)))
}

// signIn signs in with key.
func (b *browser) signIn(key string) {
	b.t.Helper()
	b.do("sign in", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible("#key"),
		chromedp.SendKeys("#key", key), chromedp.Click(`.signin button[type="submit"]`))
}

// shot saves a full-page screenshot as name.png, and checks that every
// control of the page has a label.
func (b *browser) shot(name string) {
	b.t.Helper()
	if u := b.unlabelled(); len(u) > 0 {
		b.t.Errorf("%s: controls without a label: %v", name, u)
	}
	dirs := []string{b.shots}
	if b.docs != "" {
		dirs = append(dirs, b.docs)
	}
	b.capture(name, dirs...)
}

// capture writes a full-page screenshot as name.png in each of dirs.
func (b *browser) capture(name string, dirs ...string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range dirs {
		path, err := filepath.Abs(filepath.Join(dir, name+".png"))
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot %s", path)
	}
}

// traffic sends predictions to the endpoints until stopped.
func traffic(t *testing.T, base string, endpoints ...string) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i, e := range endpoints {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for ctx.Err() == nil {
				x := make([]float64, 4)
				for j := range x {
					x[j] = 0.4 + rng.NormFloat64()
				}
				body, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": [][]float64{x}}})
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/endpoints/"+e+"/predict", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+consoleAppKey)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(40 * time.Millisecond):
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// TestConsole drives the web console in a headless Chromium against a
// gateway with two endpoints under traffic: a wrong key is refused; the
// admin sees live figures, changes a weight (confirmed in a dialog), runs a
// canary to promotion, and reads a drift monitor's histograms; a key that
// may only predict sees the same pages without their controls. With
// MLGATE_UPDATE_SCREENSHOTS=1 the screenshots also go to docs/console.
func TestConsole(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.Keys = []config.APIKey{
		{Name: "ops", SHA256: sha(consoleAdminKey), Roles: []string{"admin"}},
		{Name: "app", SHA256: sha(consoleAppKey), Roles: []string{"predict"}},
		{Name: "ds", SHA256: sha(consoleDSKey), Roles: []string{"data-scientist"}},
	}
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	base := "http://" + g.Addr
	admin := apiClient{t, base, consoleAdminKey}
	admin.register("churn", linearV1)
	admin.register("churn", linearV2)
	for _, v := range []string{"1", "2"} {
		admin.json("PUT", "/v1/models/churn/versions/"+v+"/tags/validation_status", `{"value": "PASSED"}`)
	}
	admin.json("PUT", "/v1/models/churn/aliases/champion", `{"version": 1}`)
	admin.json("PUT", "/v1/endpoints/retention", `{"variants": [{"name": "control", "model": "churn@champion", "weight": 50},
		{"name": "treatment", "model": "churn/2", "weight": 50}], "shadow": {"model": "churn/2", "percent": 100}}`)
	admin.json("PUT", "/v1/endpoints/winback", `{"variants": [{"name": "control", "model": "churn/1", "weight": 100}]}`)
	admin.json("PUT", "/v1/monitors/retention-inputs", `{"endpoint": "retention", "baseline": "model", "window": "1s",
		"min_samples": 10, "predictions": true, "thresholds": {"psi": 0.2, "ks_p": 0.01, "js": 0.1}}`)
	stop := traffic(t, base, "retention", "winback")
	defer stop()

	b := newBrowser(t, base)
	b.signIn("not-a-key")
	b.wait("the error of a wrong key", `document.querySelector('.signin .msg-error')?.textContent.includes('unknown API key') && document.getElementById('nav').offsetParent === null`)
	b.shot("signin")

	b.signIn(consoleAdminKey)
	const requests = `Number(document.querySelector('[data-endpoint="%s"] tr[data-key="control"] td.requests')?.textContent.replaceAll(',', '') || 0)`
	b.wait("both endpoints with figures", fmt.Sprintf(requests+" > 0 && "+requests+" > 0", "retention", "winback"))
	first := eval[float64](b, fmt.Sprintf(requests, "retention"))
	b.wait("the request count to grow", fmt.Sprintf(requests+" > %v", "retention", first))
	b.wait("a request rate", `Number(document.querySelector('[data-endpoint="retention"] tr[data-key="treatment"] td.rps')?.textContent) > 0`)
	b.wait("the health panel", `document.querySelector('[data-queue="recorder"]') !== null`)
	b.shot("endpoints")
	link := `[data-endpoint="retention"] h2 a`
	b.do("focus a link", chromedp.Focus(link))
	now := eval[float64](b, fmt.Sprintf(requests, "retention"))
	b.wait("a refresh", fmt.Sprintf(requests+" > %v", "retention", now))
	if !eval[bool](b, fmt.Sprintf("document.activeElement === document.querySelector(%q)", link)) {
		t.Error("a refresh of the endpoints took the focus off the link")
	}

	b.open("#/endpoints/retention")
	b.wait("the weights form", `document.querySelector('form.weights input[data-variant="treatment"]') !== null`)
	b.do("set the weights",
		chromedp.SetValue(`form.weights input[data-variant="control"]`, "70"),
		chromedp.SetValue(`form.weights input[data-variant="treatment"]`, "30"),
		chromedp.Click(`form.weights button[type="submit"]`),
		chromedp.WaitVisible("#confirm-ok"))
	b.shot("confirm")
	b.do("confirm", chromedp.Click("#confirm-ok"))
	b.wait("the new weights in the history", `[...document.querySelectorAll('tr[data-revision]')].some((tr) => tr.textContent.includes('control weight 50 → 70'))`)
	b.wait("the audit trail", `document.querySelector('tr[data-action="set_weights"]') !== null`)
	var e router.Endpoint
	json.Unmarshal(admin.json("GET", "/v1/endpoints/retention", ""), &e)
	if len(e.Policy.Variants) != 2 || e.Policy.Variants[0].Weight != 70 || e.Policy.Variants[1].Weight != 30 {
		t.Errorf("after the console's change: %+v", e.Policy)
	}
	b.shot("endpoint")

	admin.label("retention", 40)
	b.open("#/drift")
	b.wait("the monitors", `document.querySelector('tr[data-monitor="retention-inputs"]') !== null`)
	b.shot("drift-list")
	b.open("#/drift/retention-inputs")
	b.wait("the histograms", `document.querySelectorAll('figure[data-series] svg rect.bar-live').length >= 4 && document.querySelectorAll('figure[data-series] svg rect.bar-baseline').length >= 4 && document.querySelector('figure[data-series="prediction y[0]"] svg rect') !== null`)
	b.wait("the labelled performance", `document.querySelector('tr[data-variant="control"] td:nth-child(7)')?.textContent.length > 1`)
	b.wait("the metric charts", `document.querySelectorAll('figure[data-metric="psi"] svg circle').length >= 2`)
	b.shot("drift")
	b.do("judge the last minutes", chromedp.SetValue("#run-minutes", "5"), chromedp.Click(`form.run button`))
	b.wait("the judged range", `document.querySelector('.judged figure[data-series="x[0]"] svg rect.bar-live') !== null`)

	b.open("#/endpoints/winback")
	b.startCanary("churn/2", "50, 100", "300ms", "champion")
	b.wait("the promotion", `document.querySelector('.timeline li[data-action="canary_promote"]') !== null`)
	if state := canaryState(admin, "winback"); state != "promoted" {
		t.Errorf("canary %q, want promoted", state)
	}
	var churn struct {
		Aliases map[string]int `json:"aliases"`
	}
	json.Unmarshal(admin.json("GET", "/v1/models/churn", ""), &churn)
	if churn.Aliases["champion"] != 2 || len(churn.Aliases) != 1 {
		t.Errorf("aliases after the promotion: %v, want champion on version 2", churn.Aliases)
	}
	b.shot("canary")
	b.startCanary("churn/1", "10, 100", "1h", "")
	const stateIs = `document.querySelector('.canary-now .badge')?.textContent === %q`
	b.do("pause the canary", chromedp.Click(`[data-command="pause"]`))
	b.wait("the paused canary", fmt.Sprintf(stateIs, "paused"))
	b.shot("canary-paused")
	b.do("resume the canary", chromedp.Click(`[data-command="resume"]`))
	b.wait("the resumed canary", fmt.Sprintf(stateIs, "running"))
	b.do("abort the canary", chromedp.Click(`[data-command="abort"]`), chromedp.WaitVisible("#confirm-ok"), chromedp.Click("#confirm-ok"))
	b.wait("the aborted canary", fmt.Sprintf(stateIs, "aborted")+` && document.querySelector('.timeline li[data-action="canary_abort"]') !== null`)
	if state := canaryState(admin, "winback"); state != "aborted" {
		t.Errorf("canary %q, want aborted", state)
	}

	b.open("#/models")
	b.wait("the models", `document.querySelector('tr[data-model="churn"]') !== null`)
	b.shot("models-list")
	b.open("#/models/churn")
	b.wait("the versions and the alias form", `document.querySelector('tr[data-version="2"]') !== null && document.querySelector('form.alias') !== null`)
	b.shot("models")
	b.do("move the alias with the keyboard",
		chromedp.SetValue("#alias-version", "1"),
		chromedp.Focus(`form.alias input[name="alias"]`),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible("#confirm-ok"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\r"))
	b.wait("the alias on version 1", `document.querySelector('tr[data-version="1"]')?.textContent.includes('champion')`)
	var m struct {
		Aliases map[string]int `json:"aliases"`
	}
	json.Unmarshal(admin.json("GET", "/v1/models/churn", ""), &m)
	if m.Aliases["champion"] != 1 {
		t.Errorf("aliases after the console's move: %v", m.Aliases)
	}

	// A key sees the controls of its roles only: the data scientist judges
	// a time range; the predict key changes nothing.
	for _, k := range []struct {
		key  string
		want map[string][]string // controls by route
	}{
		{consoleDSKey, map[string][]string{"#/drift/retention-inputs": {"run"}}},
		{consoleAppKey, nil},
	} {
		b.do("sign out", chromedp.Click(`#who button`))
		b.signIn(k.key)
		b.wait("the endpoints", `document.querySelector('[data-endpoint="retention"] td.requests') !== null`)
		for _, route := range []string{"#/models/churn", "#/drift/retention-inputs", "#/endpoints/retention"} {
			b.open(route)
			b.wait(route, `document.querySelector('main h1')?.textContent === decodeURIComponent(location.hash.split('/')[2]) && document.querySelector('main table, main figure') !== null`)
			controls := eval[[]string](b, `[...document.querySelectorAll('form.weights, form.canary-start, [data-command], form.alias, form.run')].map((el) => el.className || el.dataset.command)`)
			if !slices.Equal(controls, k.want[route]) {
				t.Errorf("%s shows the key %s the controls %v, want %v", route, k.key, controls, k.want[route])
			}
		}
	}
	b.wait("the live rate and the audit trail", `document.querySelector('tr[data-key="control"] td.rps')?.textContent !== '–' && document.querySelector('tr[data-action="set_weights"]') !== null`)
	b.shot("readonly")
}

// TestConsoleOpenGateway signs in to a gateway with no keys configured
// (on loopback): no key is needed, and the caller is the anonymous admin.
// A gateway just started shows its empty pages: no endpoint, a monitor
// with no window yet.
func TestConsoleOpenGateway(t *testing.T) {
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	registerLinear(t, g, "lin")
	call(t, g, "PUT", "/v1/monitors/lin-inputs", "application/json", strings.NewReader(`{"model": "lin", "window": "1h", "thresholds": {"psi": 0.2}}`))
	b := newBrowser(t, "http://"+g.Addr)
	b.signIn("")
	b.wait("the anonymous admin", `document.querySelector('#who .identity')?.textContent === 'anonymous · admin' && document.querySelector('main')?.textContent.includes('No endpoints yet')`)
	b.open("#/drift/lin-inputs")
	b.wait("a monitor with no window", `document.querySelector('main')?.textContent.includes('No window has closed yet') && document.querySelector('main')?.textContent.includes('No window has been judged yet')`)
}
