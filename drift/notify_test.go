package drift

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/recovery"
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
// notifier retries, once BaseDelay has passed, with the same body, signature
// and delivery id.
func TestNotifier_RetriesUntil2xx(t *testing.T) {
	r := newReceiver(t, "s3cret", http.StatusInternalServerError)
	clk := clock.NewFake(fixedNow)
	n := NewNotifier(NotifierOptions{BaseDelay: 10 * time.Second, Clock: clk})
	if err := n.Notify(Webhook{URL: r.srv.URL + "/hooks/retrain", Secret: "s3cret"}, testAlert()); err != nil {
		t.Fatal(err)
	}
	clk.BlockUntil(1) // the first attempt failed; the retry waits
	if r.count() != 1 {
		t.Fatalf("%d requests before the retry's wait was over, want 1", r.count())
	}
	clk.Advance(10 * time.Second)
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
	clk := clock.NewFake(fixedNow)
	n := NewNotifier(NotifierOptions{Attempts: 3, BaseDelay: time.Hour, Clock: clk})
	if err := n.Notify(Webhook{URL: r.srv.URL}, testAlert()); err != nil {
		t.Fatal(err)
	}
	clk.BlockUntil(1) // the first attempt failed; the retry waits an hour
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

// The waits between attempts double from BaseDelay up to MaxDelay, on the
// notifier's clock.
func TestNotifier_Backoff(t *testing.T) {
	r := newReceiver(t, "", 500, 500, 500, 500, 500)
	clk := clock.NewFake(fixedNow)
	n := NewNotifier(NotifierOptions{Attempts: 5, BaseDelay: time.Second, MaxDelay: 3 * time.Second, Clock: clk})
	if err := n.Notify(Webhook{URL: r.srv.URL}, testAlert()); err != nil {
		t.Fatal(err)
	}
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		clk.BlockUntil(1)
		if r.count() != i+1 {
			t.Fatalf("%d requests before wait %d, want %d", r.count(), i+1, i+1)
		}
		clk.Advance(wait - time.Millisecond)
		if clk.Waiters() != 1 {
			t.Fatalf("wait %d over after %v, want %v", i+1, wait-time.Millisecond, wait)
		}
		clk.Advance(time.Millisecond)
	}
	closeNotifier(t, n)
	if got := n.Stats(); got != (NotifierStats{Failed: 1}) || r.count() != 5 {
		t.Errorf("stats %+v after %d requests, want 1 failed after 5", got, r.count())
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

// TestCheckWebhookAddr is the table of addresses alerts may and may not go
// to; the dialer's Control judges the resolved "ip:port" the same way.
func TestCheckWebhookAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		why  string // "" for allowed
	}{
		{"127.0.0.1", ""},
		{"::1", ""},
		{"10.1.2.3", ""},
		{"192.168.0.10", ""},
		{"fd12:3456::1", ""},
		{"203.0.113.7", ""},
		{"2001:db8::1", ""},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"fd00:ec2::254", "cloud instance-metadata"},
		{"100.100.100.200", "cloud instance-metadata"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
	} {
		addr := netip.MustParseAddr(tt.addr)
		err := CheckWebhookAddr(addr)
		ctlErr := dialControl("tcp", netip.AddrPortFrom(addr, 443).String(), nil)
		for _, got := range []error{err, ctlErr} {
			switch {
			case tt.why == "" && got != nil:
				t.Errorf("%s: %v, want allowed", tt.addr, got)
			case tt.why != "" && (!errors.Is(got, ErrForbiddenAddress) || !strings.Contains(got.Error(), tt.why)):
				t.Errorf("%s: %v, want refused as %s", tt.addr, got, tt.why)
			}
		}
	}
	if err := dialControl("tcp", "no-port", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("an address that is not ip:port: %v", err)
	}
}

// fakeDNS answers every A query for a name in answers with its address, and
// any other query with no answer.
func fakeDNS(t *testing.T, answers map[string][4]byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			// The question: labels up to a zero byte, then type and class.
			var labels []string
			i := 12
			for i < len(q) && q[i] != 0 && i+1+int(q[i]) <= len(q) {
				labels = append(labels, string(q[i+1:i+1+int(q[i])]))
				i += 1 + int(q[i])
			}
			end := i + 5
			if end > len(q) {
				continue
			}
			qtype := int(q[i+1])<<8 | int(q[i+2])
			ip, ok := answers[strings.Join(labels, ".")]
			an := byte(0)
			if ok && qtype == 1 {
				an = 1
			}
			resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, an, 0, 0, 0, 0}, q[12:end]...)
			if an == 1 {
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, ip[:]...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// TestNotifier_RefusesResolvedLinkLocal posts to host names: one that
// resolves to the metadata address is refused after resolution, before any
// connection, once and for good (no retry); one that resolves to loopback
// is delivered.
func TestNotifier_RefusesResolvedLinkLocal(t *testing.T) {
	r := newReceiver(t, "")
	_, port, _ := net.SplitHostPort(r.srv.Listener.Addr().String())
	dns := fakeDNS(t, map[string][4]byte{
		"metadata.example.test": {169, 254, 169, 254},
		"any.example.test":      {0, 0, 0, 0},
		"hooks.example.test":    {127, 0, 0, 1},
	})
	n := NewNotifier(NotifierOptions{Client: webhookClient(dns), Attempts: 3, BaseDelay: time.Millisecond})
	defer closeNotifier(t, n)
	for _, host := range []string{"metadata.example.test", "any.example.test"} {
		err := n.Deliver(t.Context(), Webhook{URL: "http://" + net.JoinHostPort(host, port) + "/x"}, testAlert())
		if !errors.Is(err, ErrForbiddenAddress) || strings.Contains(err.Error(), "attempts failed") {
			t.Errorf("Deliver to %s = %v, want refused at the first attempt", host, err)
		}
	}
	if err := n.Deliver(t.Context(), Webhook{URL: "http://" + net.JoinHostPort("hooks.example.test", port) + "/x"}, testAlert()); err != nil {
		t.Errorf("Deliver to a name for 127.0.0.1 = %v", err)
	}
	if r.count() != 1 {
		t.Errorf("the receiver got %d requests, want 1", r.count())
	}
	if err := n.Deliver(t.Context(), Webhook{URL: "http://[fe80::1]:" + port + "/x"}, testAlert()); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Deliver to fe80::1 = %v", err)
	}
}

// panicky panics on its first request and passes the rest on.
type panicky struct {
	once sync.Once
	next http.RoundTripper
}

func (p *panicky) RoundTrip(req *http.Request) (*http.Response, error) {
	p.once.Do(func() { panic("transport bug") })
	return p.next.RoundTrip(req)
}

// TestNotifier_SurvivesPanic: a delivery that panics counts as failed and
// is recovered; the next alert is delivered.
func TestNotifier_SurvivesPanic(t *testing.T) {
	r := newReceiver(t, "")
	before := recovery.Count("drift alert delivery")
	n := NewNotifier(NotifierOptions{Client: &http.Client{Transport: &panicky{next: http.DefaultTransport}}, BaseDelay: time.Millisecond})
	for range 2 {
		if err := n.Notify(Webhook{URL: r.srv.URL}, testAlert()); err != nil {
			t.Fatal(err)
		}
	}
	closeNotifier(t, n)
	if got := n.Stats(); got != (NotifierStats{Delivered: 1, Failed: 1}) {
		t.Errorf("stats = %+v, want 1 delivered and 1 failed", got)
	}
	if got := recovery.Count("drift alert delivery") - before; got != 1 {
		t.Errorf("%d panics counted, want 1", got)
	}
}
