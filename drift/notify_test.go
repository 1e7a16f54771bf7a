package drift

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	// RFC 4231, test case 1.
	secret := strings.Repeat("\x0b", 20)
	const want = "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
	if got := Sign(secret, []byte("Hi There")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	body := []byte(`{"event":"drift.detected"}`)
	sig := Sign("s3cret", body)
	for _, tt := range []struct {
		secret, body, header string
		want                 bool
	}{
		{"s3cret", string(body), sig, true},
		{"s3cret", string(body), strings.ToUpper(sig[:7]) + sig[7:], false},
		{"other", string(body), sig, false},
		{"s3cret", string(body) + " ", sig, false},
		{"s3cret", string(body), strings.TrimPrefix(sig, "sha256="), false},
		{"s3cret", string(body), sig[:len(sig)-2], false},
		{"s3cret", string(body), "sha256=zz", false},
		{"s3cret", string(body), "", false},
	} {
		if got := Verify(tt.secret, []byte(tt.body), tt.header); got != tt.want {
			t.Errorf("Verify(%q, %q, %q) = %v, want %v", tt.secret, tt.body, tt.header, got, tt.want)
		}
	}
}

// receiver is an httptest webhook receiver that answers with the statuses
// given, one per request (200 once they run out), checking each request's
// signature.
type receiver struct {
	t        *testing.T
	secret   string
	mu       sync.Mutex
	statuses []int
	requests []*http.Request
	bodies   [][]byte
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{t: t, secret: secret, statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Error(err)
		}
		if secret != "" && !Verify(secret, body, req.Header.Get(HeaderSignature)) {
			t.Errorf("bad signature %q", req.Header.Get(HeaderSignature))
		}
		if secret == "" && req.Header.Get(HeaderSignature) != "" {
			t.Errorf("signed without a secret")
		}
		r.mu.Lock()
		r.requests = append(r.requests, req)
		r.bodies = append(r.bodies, body)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func testAlert() *Alert {
	return &Alert{
		Event: EventDriftDetected, Monitor: "churn-inputs", Endpoint: "churn", Model: testModel,
		Window:  AlertWindow{Start: fixedNow, End: fixedNow.Add(15 * time.Minute)},
		Drifted: []DriftedMetric{{Feature: "age", Metric: MetricPSI, Value: 0.31, Threshold: 0.2}},
	}
}

func closeNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// The receiver fails the first attempt with 500 and accepts the second: the
// notifier retries with the same body, signature and delivery id.
func TestNotifier_RetriesUntil2xx(t *testing.T) {
	r := newReceiver(t, "s3cret", http.StatusInternalServerError)
	n := NewNotifier(NotifierOptions{BaseDelay: 10 * time.Millisecond})
	if err := n.Notify(Webhook{URL: r.srv.URL + "/hooks/retrain", Secret: "s3cret"}, testAlert()); err != nil {
		t.Fatal(err)
	}
	closeNotifier(t, n)
	if r.count() != 2 {
		t.Fatalf("%d requests, want 2", r.count())
	}
	if got := n.Stats(); got != (NotifierStats{Delivered: 1}) {
		t.Errorf("stats = %+v", got)
	}
	a, b := r.requests[0], r.requests[1]
	if a.Method != http.MethodPost || a.URL.Path != "/hooks/retrain" || a.Header.Get("Content-Type") != "application/json" ||
		a.Header.Get(HeaderEvent) != EventDriftDetected {
		t.Errorf("request %s %s, headers %v", a.Method, a.URL, a.Header)
	}
	if id := a.Header.Get(HeaderDelivery); id == "" || id != b.Header.Get(HeaderDelivery) || string(r.bodies[0]) != string(r.bodies[1]) {
		t.Errorf("the retry differs: delivery %q then %q", id, b.Header.Get(HeaderDelivery))
	}
	var got map[string]any
	if err := json.Unmarshal(r.bodies[1], &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "drift.detected", "monitor": "churn-inputs", "endpoint": "churn",
		"model":   map[string]any{"name": "churn", "version": 3.0, "uuid": testModel.UUID},
		"window":  map[string]any{"start": "2026-11-09T12:00:00Z", "end": "2026-11-09T12:15:00Z"},
		"drifted": []any{map[string]any{"feature": "age", "metric": "psi", "value": 0.31, "threshold": 0.2}},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("body = %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestNotifier_GivesUp(t *testing.T) {
	for _, tt := range []struct {
		name     string
		statuses []int
		attempts int
		want     NotifierStats
		requests int
	}{
		{"server errors", []int{500, 502, 503}, 3, NotifierStats{Failed: 1}, 3},
		{"refused for good", []int{400}, 3, NotifierStats{Failed: 1}, 1},
		{"too many requests is retried", []int{429, 408}, 3, NotifierStats{Delivered: 1}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, "", tt.statuses...)
			n := NewNotifier(NotifierOptions{Attempts: tt.attempts, BaseDelay: time.Millisecond})
			if err := n.Notify(Webhook{URL: r.srv.URL}, testAlert()); err != nil {
				t.Fatal(err)
			}
			closeNotifier(t, n)
			if got := n.Stats(); got != tt.want || r.count() != tt.requests {
				t.Errorf("stats %+v after %d requests, want %+v after %d", got, r.count(), tt.want, tt.requests)
			}
		})
	}
}

func TestNotifier_QueueFullAndClosed(t *testing.T) {
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer srv.Close()
	n := NewNotifier(NotifierOptions{QueueSize: 1})
	hook := Webhook{URL: srv.URL}
	if err := n.Notify(hook, testAlert()); err != nil {
		t.Fatal(err)
	}
	<-arrived // the goroutine holds the first alert; the queue is empty
	if err := n.Notify(hook, testAlert()); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(hook, testAlert()); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Notify on a full queue = %v, want ErrQueueFull", err)
	}
	close(release)
	closeNotifier(t, n)
	if got := n.Stats(); got != (NotifierStats{Delivered: 2, Dropped: 1}) {
		t.Errorf("stats = %+v", got)
	}
	if err := n.Notify(hook, testAlert()); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Close = %v, want ErrClosed", err)
	}
	if err := n.Notify(Webhook{}, testAlert()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Notify without a URL = %v, want ErrInvalid", err)
	}
}

// Close bounded by a context cancels a delivery waiting to retry.
func TestNotifier_CloseTimeout(t *testing.T) {
	r := newReceiver(t, "", 500)
	n := NewNotifier(NotifierOptions{Attempts: 3, BaseDelay: time.Hour})
	if err := n.Notify(Webhook{URL: r.srv.URL}, testAlert()); err != nil {
		t.Fatal(err)
	}
	for r.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := n.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got := n.Stats(); got != (NotifierStats{Failed: 1}) {
		t.Errorf("stats = %+v", got)
	}
}

func TestNotifier_Deliver(t *testing.T) {
	r := newReceiver(t, "k", 503, 503)
	n := NewNotifier(NotifierOptions{Attempts: 2, BaseDelay: time.Millisecond})
	defer closeNotifier(t, n)
	err := n.Deliver(context.Background(), Webhook{URL: r.srv.URL + "/x?token=abc", Secret: "k"}, testAlert())
	if err == nil || !strings.Contains(err.Error(), "2 attempts failed") || !strings.Contains(err.Error(), "503") {
		t.Errorf("Deliver = %v", err)
	}
	if err := n.Deliver(context.Background(), Webhook{URL: r.srv.URL, Secret: "k"}, testAlert()); err != nil {
		t.Errorf("Deliver = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Deliver(ctx, Webhook{URL: r.srv.URL}, testAlert()); !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver with a cancelled context = %v", err)
	}
	// A refused connection's error does not show the URL's query.
	err = n.Deliver(context.Background(), Webhook{URL: "http://127.0.0.1:1/x?token=abc"}, testAlert())
	if err == nil || strings.Contains(err.Error(), "abc") {
		t.Errorf("Deliver to a closed port = %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@h.example.com/a?token=x#f": "https://h.example.com/a",
		"http://h/a@b": "http://h/a@b",
		"http://h":     "http://h",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A monitor with a webhook, in a drifted state for four windows within an
// hour, sends the receiver one alert: the cooldown suppresses the rest.
func TestMonitorNotifier_CooldownSuppressesSecondAlert(t *testing.T) {
	r := newReceiver(t, "s3cret")
	spec := testSpec()
	spec.Webhook = Webhook{URL: r.srv.URL, Secret: "s3cret"}
	m := newTestMonitor(t, spec)
	n := NewNotifier(NotifierOptions{BaseDelay: time.Millisecond})
	rng := rand.New(rand.NewPCG(6, 6))
	now := fixedNow
	var drifted int
	for range 4 {
		for range 1000 {
			m.Observe(population(rng, true))
		}
		now = now.Add(15 * time.Minute)
		rep, _ := m.Evaluate(now, false)
		if rep.Drifted {
			drifted++
		}
		if rep.Alert != nil {
			if err := n.Notify(m.Spec().Webhook, rep.Alert); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeNotifier(t, n)
	if drifted != 4 || r.count() != 1 {
		t.Errorf("%d windows drifted, %d alerts received; want 4 and 1", drifted, r.count())
	}
	var a Alert
	if err := json.Unmarshal(r.bodies[0], &a); err != nil || a.Monitor != "churn-inputs" || len(a.Drifted) == 0 {
		t.Errorf("alert %+v, %v", a, err)
	}
}
