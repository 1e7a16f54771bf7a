package drift

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mlgate/mlgate/internal/jsondur"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/internal/names"
)

// Monitor spec defaults and limits.
const (
	BaselineModel     = "model"
	DefaultCooldown   = time.Hour
	DefaultMinSamples = 100
	MinWindow         = time.Second
	maxRefName        = 256
	maxWebhookURL     = 2048
	maxWebhookSecret  = 1024
)

// Duration is a time.Duration written in JSON as a Go duration string such as
// "30s" or "15m".
type Duration = jsondur.Duration

// Thresholds are a monitor's drift rules; a rule set to 0 is off. A numeric
// series drifts when its PSI is above PSI or its KS p-value below KSP; a
// categorical one when its chi-square p-value is below Chi2P; either kind
// when its Jensen–Shannon distance is above JS.
type Thresholds struct {
	PSI   float64 `json:"psi"`
	KSP   float64 `json:"ks_p"`
	JS    float64 `json:"js"`
	Chi2P float64 `json:"chi2_p"`
}

// Webhook is where alerts are posted, and the secret they are signed with
// (see Sign). No URL means no webhook.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// MonitorSpec says what a drift monitor watches and when it alerts.
type MonitorSpec struct {
	// Name names the monitor in reports and alerts.
	Name string `json:"name"`
	// Endpoint or Model (exactly one) is what the monitor watches: every
	// prediction of an endpoint, or of a model reference ("name",
	// "name@alias", "name/version") whichever endpoint served it.
	Endpoint string `json:"endpoint,omitempty"`
	Model    string `json:"model,omitempty"`
	// Baseline is "model", the baseline registered with the model version, or
	// a time range of the inference table, "start/end" in RFC 3339, such as
	// "2026-11-01T00:00:00Z/2026-11-08T00:00:00Z".
	Baseline string `json:"baseline"`
	// Window is how long each compared window of recent traffic lasts.
	Window Duration `json:"window"`
	// MinSamples is how many values a feature needs in a window to be judged;
	// a window with fewer is reported but never drifts.
	MinSamples int `json:"min_samples"`
	// Features are the input features to watch; none means all those in the
	// baseline.
	Features []string `json:"features,omitempty"`
	// Predictions also watches every prediction output in the baseline.
	Predictions bool       `json:"predictions"`
	Thresholds  Thresholds `json:"thresholds"`
	Webhook     Webhook    `json:"webhook"`
	// Cooldown is the least time between two alerts of the monitor.
	Cooldown Duration `json:"cooldown"`
}

// DecodeMonitorSpec decodes a monitor spec strictly (unknown fields are
// errors), with baseline "model", min_samples 100 and cooldown 1h unless
// given, and checks it with Check(nil). Errors match ErrInvalid and name the
// field.
func DecodeMonitorSpec(body []byte) (MonitorSpec, error) {
	return decodeMonitorSpec(body, "")
}

// DecodeNamedMonitorSpec decodes, as DecodeMonitorSpec does, the spec of the
// monitor called name elsewhere (in a URL): the body may leave its name out,
// and if it gives one it must be name.
func DecodeNamedMonitorSpec(name string, body []byte) (MonitorSpec, error) {
	return decodeMonitorSpec(body, name)
}

func decodeMonitorSpec(body []byte, name string) (MonitorSpec, error) {
	s := MonitorSpec{
		Baseline:   BaselineModel,
		MinSamples: DefaultMinSamples,
		Cooldown:   Duration(DefaultCooldown),
	}
	if !utf8.Valid(body) {
		return MonitorSpec{}, invalid("monitor: not valid UTF-8")
	}
	if err := checkObject(body); err != nil {
		return MonitorSpec{}, err
	}
	if err := checkDurations(body); err != nil {
		return MonitorSpec{}, err
	}
	if err := jsonerr.Decode(body, &s); err != nil {
		return MonitorSpec{}, invalid("monitor: %s", clip(err.Error()))
	}
	if name != "" {
		if s.Name != "" && s.Name != name {
			return MonitorSpec{}, invalid("name: the body names %q, the URL %q", clip(s.Name), clip(name))
		}
		s.Name = name
	}
	if err := s.Check(nil); err != nil {
		return MonitorSpec{}, err
	}
	return s, nil
}

// checkDurations checks the duration fields of a monitor body that is an
// object, so that a string that is not a duration is refused with its
// field's name, which the decoder's error would not give. Values of other
// types are left to the decoder, which names their field.
func checkDurations(body []byte) error {
	var raw struct{ Window, Cooldown json.RawMessage }
	if json.Unmarshal(body, &raw) != nil {
		return nil
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"window", raw.Window}, {"cooldown", raw.Cooldown}} {
		var text string
		if json.Unmarshal(f.raw, &text) != nil {
			continue
		}
		if _, err := time.ParseDuration(text); err != nil {
			return invalid("monitor: field %q: want a Go duration such as \"90s\" or \"24h\", got %q", f.name, clip(text))
		}
	}
	return nil
}

// clipLen is how much of a value from a request an error message repeats.
const clipLen = 200

// clip shortens s, a value from a request, for an error message.
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	cut := clipLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d bytes)", len(s))
}

// checkObject refuses a body that is not a JSON object: null, which would
// decode as an empty spec, and any other value, whose decoding error would
// not say what was expected.
func checkObject(body []byte) error {
	tok, err := json.NewDecoder(bytes.NewReader(body)).Token()
	if err != nil {
		return invalid("monitor: %s", jsonerr.Describe(err))
	}
	if tok != json.Delim('{') {
		got := "a value"
		switch tok.(type) {
		case nil:
			got = "null"
		case json.Delim:
			got = "an array"
		case string:
			got = "a string"
		case float64:
			got = "a number"
		case bool:
			got = "true or false"
		}
		return invalid("monitor: want a JSON object, got %s", got)
	}
	return nil
}

// Check reports whether the spec is well formed: a name and, if given, an
// endpoint that names.Check accepts; exactly one of endpoint and model
// (which resolve, when not nil, accepts: it gets the field's name and
// value); a baseline of "model" or a time range whose start is before its
// end; a window of at least 1s; min_samples and cooldown not negative;
// distinct feature names; thresholds not negative, p-values and the JS
// distance at most 1, and at least one rule on; a webhook URL, when set,
// absolute http or https and not to an address CheckWebhookAddr refuses.
// Errors match ErrInvalid and name the field.
func (s MonitorSpec) Check(resolve func(field, ref string) error) error {
	if err := names.Check(s.Name); err != nil {
		return &causeError{msg: "name: " + err.Error(), cause: err}
	}
	switch {
	case s.Endpoint == "" && s.Model == "":
		return invalid("endpoint or model: one of them is required")
	case s.Endpoint != "" && s.Model != "":
		return invalid("endpoint and model: give one of them, not both")
	}
	field, ref := "endpoint", s.Endpoint
	if s.Model != "" {
		field, ref = "model", s.Model
	}
	if s.Endpoint != "" {
		if err := names.Check(ref); err != nil {
			return &causeError{msg: "endpoint: " + err.Error(), cause: err}
		}
	} else if err := checkText(field, ref, maxRefName); err != nil {
		return err
	}
	if resolve != nil {
		if err := resolve(field, ref); err != nil {
			return &causeError{msg: field + ": " + err.Error(), cause: err}
		}
	}
	if _, _, err := s.baselineRange(); err != nil {
		return err
	}
	if time.Duration(s.Window) < MinWindow {
		return invalid("window: at least %v, got %v", MinWindow, time.Duration(s.Window))
	}
	if s.MinSamples < 0 {
		return invalid("min_samples: must not be negative, got %d", s.MinSamples)
	}
	if s.Cooldown < 0 {
		return invalid("cooldown: must not be negative, got %v", time.Duration(s.Cooldown))
	}
	if len(s.Features) > MaxBaselineSeries {
		return invalid("features: at most %d, got %d", MaxBaselineSeries, len(s.Features))
	}
	seen := make(map[string]int, len(s.Features))
	for i, f := range s.Features {
		if err := checkText(fmt.Sprintf("features[%d]", i), f, maxSeriesName); err != nil {
			return err
		}
		if j, ok := seen[f]; ok {
			return invalid("features[%d]: %q is already features[%d]", i, f, j)
		}
		seen[f] = i
	}
	if err := s.Thresholds.check(); err != nil {
		return err
	}
	return s.Webhook.check()
}

// check reports whether the webhook is absent or an absolute http or https
// URL whose host, if written as an IP address, is one alerts may go to (see
// CheckWebhookAddr); a host name is judged at delivery, by the address it
// resolves to.
func (w Webhook) check() error {
	switch {
	case w.URL == "" && w.Secret != "":
		return invalid("webhook.secret: set without webhook.url")
	case w.URL == "":
		return nil
	case len(w.URL) > maxWebhookURL:
		return invalid("webhook.url: at most %d bytes, got %d", maxWebhookURL, len(w.URL))
	case len(w.Secret) > maxWebhookSecret:
		return invalid("webhook.secret: at most %d bytes, got %d", maxWebhookSecret, len(w.Secret))
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("webhook.url: want an absolute http or https URL, got %q", w.URL)
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := CheckWebhookAddr(addr); err != nil {
			return &causeError{msg: "webhook.url: " + err.Error(), cause: err}
		}
	}
	return nil
}

func (t Thresholds) check() error {
	for _, r := range []struct {
		field string
		value float64
		max   float64
	}{
		{"psi", t.PSI, 0},
		{"ks_p", t.KSP, 1},
		{"js", t.JS, 1},
		{"chi2_p", t.Chi2P, 1},
	} {
		switch {
		case !(r.value >= 0) || r.value > 1e300:
			return invalid("thresholds.%s: must be a number not negative, got %v", r.field, r.value)
		case r.max > 0 && r.value > r.max:
			return invalid("thresholds.%s: at most %v, got %v", r.field, r.max, r.value)
		}
	}
	if t == (Thresholds{}) {
		return invalid("thresholds: set at least one of psi, ks_p, js and chi2_p")
	}
	return nil
}

// BaselineRange returns the start and end of the spec's baseline time range;
// ok is false when the baseline is the model's.
func (s MonitorSpec) BaselineRange() (start, end time.Time, ok bool) {
	start, end, err := s.baselineRange()
	return start, end, err == nil && !start.IsZero()
}

func (s MonitorSpec) baselineRange() (start, end time.Time, err error) {
	if s.Baseline == BaselineModel {
		return time.Time{}, time.Time{}, nil
	}
	from, to, ok := strings.Cut(s.Baseline, "/")
	if !ok {
		return time.Time{}, time.Time{}, invalid("baseline: want %q or a time range \"start/end\" in RFC 3339, got %q", BaselineModel, s.Baseline)
	}
	if start, err = time.Parse(time.RFC3339, from); err != nil {
		return time.Time{}, time.Time{}, invalid("baseline: start %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", from)
	}
	if end, err = time.Parse(time.RFC3339, to); err != nil {
		return time.Time{}, time.Time{}, invalid("baseline: end %q: want an RFC 3339 time such as 2026-11-08T00:00:00Z", to)
	}
	if !start.Before(end) {
		return time.Time{}, time.Time{}, invalid("baseline: the range must start before it ends, got %q", s.Baseline)
	}
	return start, end, nil
}

// Redacted returns the spec with the webhook secret, if any, replaced by
// "redacted", for reports.
func (s MonitorSpec) Redacted() MonitorSpec {
	if s.Webhook.Secret != "" {
		s.Webhook.Secret = "redacted"
	}
	s.Features = append([]string(nil), s.Features...)
	return s
}

func checkText(field, v string, limit int) error {
	switch {
	case v == "":
		return invalid("%s: required", field)
	case len(v) > limit:
		return invalid("%s: at most %d bytes, got %d", field, limit, len(v))
	case strings.IndexFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return invalid("%s: must not hold control characters, got %q", field, v)
	}
	return nil
}

// causeError is an ErrInvalid whose message ends with another error's, which
// it also wraps: a model reference the resolver refused matches both
// ErrInvalid and the resolver's error.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string   { return e.msg }
func (e *causeError) Unwrap() []error { return []error{ErrInvalid, e.cause} }
