package drift

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/recovery"
)

// EventDriftDetected is the event of a drift alert.
const EventDriftDetected = "drift.detected"

// Webhook request headers.
const (
	// HeaderSignature holds "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the webhook's secret (see Sign); absent without a secret.
	HeaderSignature = "X-Mlgate-Signature"
	// HeaderDelivery holds an id that is the same in every attempt of one
	// alert, so that a receiver can drop a retried delivery it already has.
	HeaderDelivery = "X-Mlgate-Delivery"
	// HeaderEvent holds the alert's event.
	HeaderEvent = "X-Mlgate-Event"
)

// Alert is what a webhook receives, as JSON, when a monitor detects drift.
type Alert struct {
	Event    string          `json:"event"`
	Monitor  string          `json:"monitor"`
	Endpoint string          `json:"endpoint"`
	Model    ModelInfo       `json:"model"`
	Window   AlertWindow     `json:"window"`
	Drifted  []DriftedMetric `json:"drifted"`
}

// AlertWindow is the window that drifted.
type AlertWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// DriftedMetric is one broken rule: the feature (or, with Prediction, the
// prediction output), the metric, its value and its threshold.
type DriftedMetric struct {
	Feature    string  `json:"feature"`
	Prediction bool    `json:"prediction,omitempty"`
	Metric     string  `json:"metric"`
	Value      float64 `json:"value"`
	Threshold  float64 `json:"threshold"`
}

// Sign returns the signature header value of a webhook body:
// "sha256=" followed by the hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is body's signature under secret, comparing
// in constant time. Receivers call it with the raw request body.
func Verify(secret string, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// NotifierOptions tune a Notifier; a zero field takes its default.
type NotifierOptions struct {
	// Attempts is how many times a delivery is tried (default 5).
	Attempts int
	// BaseDelay is the wait before the second attempt; each later wait
	// doubles, up to MaxDelay (defaults 1s and 1m).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Timeout bounds each attempt (default 10s).
	Timeout time.Duration
	// QueueSize is how many alerts may wait for delivery (default 64).
	QueueSize int
	// Client sends the requests (default: one that refuses to connect to an
	// address CheckWebhookAddr refuses, see WebhookClient). A client given
	// here is used as it is.
	Client *http.Client
	// Log gets a line per failed attempt and per alert given up on
	// (default: none).
	Log *slog.Logger
	// Clock times the waits between attempts (default: the real clock).
	Clock clock.Clock
}

// Notifier delivers alerts to webhooks from its own goroutine, through a
// bounded queue. A delivery is a POST of the alert as JSON, signed when the
// webhook has a secret, tried up to Attempts times with exponential backoff
// until the receiver answers 2xx. An answer of 4xx other than 408 and 429
// means the receiver refused the alert for good, and is not retried. Close
// stops it.
type Notifier struct {
	opts   NotifierOptions
	queue  chan delivery
	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex // guards closed and sends on queue
	closed bool

	delivered, failed, dropped atomic.Int64
}

type delivery struct {
	hook Webhook
	body []byte
	id   string
	done func(error) // nil, or told how the delivery ended
}

// NotifierStats counts alerts: delivered (a 2xx answer), failed (given up
// on) and dropped (the queue was full).
type NotifierStats struct {
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	Dropped   int64 `json:"dropped"`
}

// NewNotifier starts a notifier.
func NewNotifier(opts NotifierOptions) *Notifier {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.Client == nil {
		opts.Client = WebhookClient()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Clock = clock.Or(opts.Clock)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		opts:   opts,
		queue:  make(chan delivery, opts.QueueSize),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	recovery.Go(opts.Log, "drift notifier", n.run)
	return n
}

// run delivers the queued alerts. A delivery that panics counts as failed,
// and the next one goes on.
func (n *Notifier) run() {
	defer close(n.done)
	for d := range n.queue {
		var err error
		if p := recovery.Do(n.opts.Log, "drift alert delivery", func() { err = n.send(n.ctx, d) }); p != nil {
			err = p
		}
		if d.done != nil {
			_ = recovery.Do(n.opts.Log, "drift alert delivered hook", func() { d.done(err) })
		}
		if err != nil {
			n.failed.Add(1)
			n.opts.Log.Warn("drift alert not delivered", "url", redactURL(d.hook.URL), "delivery", d.id, "err", err)
			continue
		}
		n.delivered.Add(1)
	}
}

// Notify queues an alert for delivery to hook and returns at once. It
// returns ErrQueueFull when the queue is full (the alert is dropped),
// ErrClosed after Close, and an error matching ErrInvalid when hook has no
// URL.
func (n *Notifier) Notify(hook Webhook, a *Alert) error {
	d, err := newDelivery(hook, a)
	if err != nil {
		return err
	}
	return n.enqueue(d)
}

// NotifyDelivery is Notify for an alert whose delivery id is already
// chosen (an alert kept in an outbox, sent again after a restart with the
// same X-Mlgate-Delivery so that its receiver can drop the repeat): done,
// if not nil, is called from the notifier's goroutine when the delivery
// ends, with nil once the receiver answered 2xx, or with the error given
// up on (Close's cancellation included). It is not called when
// NotifyDelivery returns an error.
func (n *Notifier) NotifyDelivery(hook Webhook, a *Alert, id string, done func(error)) error {
	if id == "" {
		return invalid("delivery id: required")
	}
	d, err := newDelivery(hook, a)
	if err != nil {
		return err
	}
	d.id, d.done = id, done
	return n.enqueue(d)
}

func (n *Notifier) enqueue(d delivery) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	select {
	case n.queue <- d:
		return nil
	default:
		n.dropped.Add(1)
		return ErrQueueFull
	}
}

// Deliver delivers an alert to hook now, with the notifier's retries,
// within ctx. It returns nil once the receiver answered 2xx, and otherwise
// the last attempt's error (or ctx's).
func (n *Notifier) Deliver(ctx context.Context, hook Webhook, a *Alert) error {
	d, err := newDelivery(hook, a)
	if err != nil {
		return err
	}
	return n.send(ctx, d)
}

func newDelivery(hook Webhook, a *Alert) (delivery, error) {
	if hook.URL == "" {
		return delivery{}, invalid("webhook.url: required to deliver an alert")
	}
	body, err := json.Marshal(a)
	if err != nil {
		return delivery{}, fmt.Errorf("encode alert: %w", err)
	}
	return delivery{hook: hook, body: body, id: rand.Text()}, nil
}

// Stats returns the notifier's counts so far.
func (n *Notifier) Stats() NotifierStats {
	return NotifierStats{Delivered: n.delivered.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
}

// Close stops taking alerts and waits for the queued ones to be delivered
// or given up on. If ctx ends first, it cancels the deliveries in progress
// and those left in the queue, waits for the goroutine to end, and returns
// ctx's error.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-n.done
		return ctx.Err()
	}
}

// permanentError is a refusal that retrying will not change.
type permanentError struct{ error }

func (n *Notifier) send(ctx context.Context, d delivery) error {
	var err error
	delay := n.opts.BaseDelay
	for attempt := 1; attempt <= n.opts.Attempts; attempt++ {
		if attempt > 1 {
			n.opts.Log.Info("drift alert attempt failed; retrying", "url", redactURL(d.hook.URL), "delivery", d.id, "attempt", attempt-1, "retry_in", delay, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("deliver alert: %w (last attempt: %w)", ctx.Err(), err)
			case <-n.opts.Clock.After(delay):
			}
			delay = min(2*delay, n.opts.MaxDelay)
		}
		err = n.post(ctx, d)
		var perm permanentError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &perm):
			return perm.error
		case ctx.Err() != nil:
			return fmt.Errorf("deliver alert: %w", err)
		}
	}
	return fmt.Errorf("deliver alert: %d attempts failed, the last: %w", n.opts.Attempts, err)
}

func (n *Notifier) post(ctx context.Context, d delivery) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
	if err != nil {
		return permanentError{fmt.Errorf("deliver alert: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mlgate-drift")
	req.Header.Set(HeaderEvent, EventDriftDetected)
	req.Header.Set(HeaderDelivery, d.id)
	if d.hook.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(d.hook.Secret, d.body))
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			urlErr.URL = redactURL(urlErr.URL)
		}
		if errors.Is(err, ErrForbiddenAddress) {
			return permanentError{fmt.Errorf("deliver alert: %w", err)}
		}
		return err
	}
	// Drain a little so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return permanentError{fmt.Errorf("deliver alert: the receiver refused it: %s", resp.Status)}
	default:
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
}

// redactURL drops a URL's query and user info, which may hold tokens, for
// logs.
func redactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.IndexByte(rest, '@'); at >= 0 && at < strings.IndexByte(rest+"/", '/') {
			rest = rest[at+1:]
		}
		return scheme + "://" + rest
	}
	return raw
}

// metadataAddrs are cloud instance-metadata services outside the link-local
// ranges: AWS's over IPv6 and Alibaba Cloud's.
var metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200")}

// thisNetwork is 0.0.0.0/8, which no host has: a connection to one of its
// addresses reaches the local host in disguise.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// CheckWebhookAddr reports whether alerts may be posted to addr. It refuses
// link-local addresses (169.254.0.0/16 and fe80::/10, where cloud
// instance-metadata services answer), the metadata addresses outside them
// (fd00:ec2::254, 100.100.100.200), the unspecified addresses and the rest
// of 0.0.0.0/8, multicast and the broadcast address, IPv4 ones also when
// written as IPv4-mapped IPv6. Loopback and private addresses are allowed: a
// receiver on the same host or network is an ordinary set-up. Errors match
// ErrForbiddenAddress.
func CheckWebhookAddr(addr netip.Addr) error {
	a := addr.Unmap().WithZone("")
	var why string
	switch {
	case a.IsUnspecified() || (a.Is4() && thisNetwork.Contains(a)):
		why = "unspecified (it stands for this host; use 127.0.0.1 for a receiver here)"
	case a.IsLinkLocalUnicast():
		why = "link-local, where cloud instance-metadata services answer"
	case a.IsMulticast():
		why = "multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	case slices.Contains(metadataAddrs, a):
		why = "a cloud instance-metadata address"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, addr, why)
}

// WebhookClient returns the HTTP client a Notifier posts alerts with by
// default: http.DefaultTransport's settings, with a dialer that refuses to
// connect to an address CheckWebhookAddr refuses. It judges the address a
// host name resolved to, just before connecting, so a name that resolves to
// 169.254.169.254 is refused like the address itself, and so is a redirect
// to one. Behind a proxy (HTTPS_PROXY, HTTP_PROXY), the proxy's address is
// the one judged, and the proxy is left to refuse the rest.
func WebhookClient() *http.Client { return webhookClient(nil) }

// webhookClient is WebhookClient resolving host names with r (nil: the
// default resolver).
func webhookClient(r *net.Resolver) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: r, Control: dialControl}
	t.DialContext = d.DialContext
	return &http.Client{Transport: t}
}

// dialControl is a net.Dialer's Control: it refuses the resolved address of
// a connection about to be made if CheckWebhookAddr refuses it.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q: %w", ErrForbiddenAddress, address, err)
	}
	return CheckWebhookAddr(ap.Addr())
}
