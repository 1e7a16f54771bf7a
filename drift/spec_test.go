package drift

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeMonitorSpec(t *testing.T) {
	s, err := DecodeMonitorSpec([]byte(`{"name": "churn-inputs", "endpoint": "churn", "window": "15m",
		"thresholds": {"psi": 0.2, "ks_p": 0.01}, "webhook": {"url": "https://hooks.example.com/x", "secret": "s3"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Baseline != BaselineModel || s.MinSamples != DefaultMinSamples || time.Duration(s.Cooldown) != DefaultCooldown ||
		time.Duration(s.Window) != 15*time.Minute || s.Thresholds != (Thresholds{PSI: 0.2, KSP: 0.01}) {
		t.Errorf("spec = %+v", s)
	}
	if _, _, ok := s.BaselineRange(); ok {
		t.Error("BaselineRange of a model baseline: ok")
	}
	data, _ := json.Marshal(s)
	if again, err := DecodeMonitorSpec(data); err != nil || again.Webhook != s.Webhook || again.Window != s.Window {
		t.Errorf("round trip: %v, %+v", err, again)
	}
	if r := s.Redacted(); r.Webhook.Secret != "redacted" || s.Webhook.Secret != "s3" {
		t.Errorf("Redacted: %+v", r.Webhook)
	}

	s, err = DecodeMonitorSpec([]byte(`{"name": "m", "model": "churn@champion", "window": "1s",
		"baseline": "2026-11-01T00:00:00Z/2026-11-08T00:00:00+01:00", "min_samples": 0, "cooldown": "0s",
		"features": ["a", "b"], "predictions": true, "thresholds": {"js": 1, "chi2_p": 0.05}}`))
	if err != nil {
		t.Fatal(err)
	}
	start, end, ok := s.BaselineRange()
	if !ok || !start.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2026, 11, 7, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("BaselineRange = %v, %v, %v", start, end, ok)
	}
	if s.MinSamples != 0 || s.Cooldown != 0 {
		t.Errorf("explicit zeros were replaced: %+v", s)
	}
}

func TestDecodeMonitorSpec_Errors(t *testing.T) {
	const base = `"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}`
	tests := []struct{ in, want string }{
		{`{` + base + `, "windw": "1m"}`, `monitor: unknown field "windw"`},
		{`{` + base + `, "min_samples": "10"}`, `monitor: field "min_samples": expected a whole number, got string`},
		{`{"name": "m", "endpoint": "e", "window": 900, "thresholds": {"psi": 0.2}}`, `monitor: field "window": expected a string, got number`},
		{`{"name": "m", "endpoint": "e", "window": "15 minutes", "thresholds": {"psi": 0.2}}`, `duration "15 minutes": want a Go duration`},
		{`{"endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, "name: required"},
		{`{"name": "m", "window": "15m", "thresholds": {"psi": 0.2}}`, "endpoint or model: one of them is required"},
		{`{` + base + `, "model": "x"}`, "endpoint and model: give one of them, not both"},
		{`{"name": "m", "endpoint": "e\n", "window": "15m", "thresholds": {"psi": 0.2}}`, "endpoint: must not hold control characters"},
		{`{"name": "m", "endpoint": "e", "window": "500ms", "thresholds": {"psi": 0.2}}`, "window: at least 1s, got 500ms"},
		{`{"name": "m", "endpoint": "e", "thresholds": {"psi": 0.2}}`, "window: at least 1s, got 0s"},
		{`{` + base + `, "baseline": "yesterday"}`, `baseline: want "model" or a time range`},
		{`{` + base + `, "baseline": "2026-11-01/2026-11-08"}`, `baseline: start "2026-11-01": want an RFC 3339 time`},
		{`{` + base + `, "baseline": "2026-11-08T00:00:00Z/2026-11-01T00:00:00Z"}`, "baseline: the range must start before it ends"},
		{`{` + base + `, "min_samples": -1}`, "min_samples: must not be negative"},
		{`{` + base + `, "cooldown": "-1h"}`, "cooldown: must not be negative"},
		{`{` + base + `, "features": ["a", ""]}`, "features[1]: required"},
		{`{` + base + `, "features": ["a", "b", "a"]}`, `features[2]: "a" is already features[0]`},
		{`{"name": "m", "endpoint": "e", "window": "15m"}`, "thresholds: set at least one of psi, ks_p, js and chi2_p"},
		{`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"psi": -0.2}}`, "thresholds.psi: must be a number not negative"},
		{`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"ks_p": 1.5}}`, "thresholds.ks_p: at most 1, got 1.5"},
		{`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"js": 2}}`, "thresholds.js: at most 1, got 2"},
		{`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"chi2_p": 1.01}}`, "thresholds.chi2_p: at most 1"},
		{`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2, "kl": 1}}`, `unknown field "kl"`},
		{`{` + base + `, "webhook": {"url": "ftp://x/y"}}`, `webhook.url: want an absolute http or https URL, got "ftp://x/y"`},
		{`{` + base + `, "webhook": {"url": "/hooks/x"}}`, "webhook.url: want an absolute http or https URL"},
		{`{` + base + `, "webhook": {"url": "https://"}}`, "webhook.url: want an absolute http or https URL"},
		{`{` + base + `, "webhook": {"secret": "s"}}`, "webhook.secret: set without webhook.url"},
		{`{` + base + `} {}`, "unexpected data after the JSON value"},
	}
	for _, tt := range tests {
		_, err := DecodeMonitorSpec([]byte(tt.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeMonitorSpec(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestMonitorSpec_CheckResolve(t *testing.T) {
	errUnknown := errors.New("no such endpoint")
	s := MonitorSpec{Name: "m", Endpoint: "nope", Baseline: BaselineModel, Window: Duration(time.Minute), Thresholds: Thresholds{PSI: 0.2}}
	var gotField, gotRef string
	err := s.Check(func(field, ref string) error {
		gotField, gotRef = field, ref
		return errUnknown
	})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, errUnknown) || err.Error() != "endpoint: no such endpoint" {
		t.Errorf("Check = %v", err)
	}
	if gotField != "endpoint" || gotRef != "nope" {
		t.Errorf("resolve got %q, %q", gotField, gotRef)
	}
	if err := s.Check(func(string, string) error { return nil }); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func FuzzDecodeMonitorSpec(f *testing.F) {
	for _, seed := range []string{
		`{"name": "m", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`,
		`{"name": "m", "model": "x/2", "window": "1h", "baseline": "2026-11-01T00:00:00Z/2026-11-08T00:00:00Z", "thresholds": {"ks_p": 0.01}, "webhook": {"url": "http://h/x", "secret": "s"}, "cooldown": "0s"}`,
		`{"name": "m", "endpoint": "e", "window": null}`,
		`{"window": "1µs"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeMonitorSpec(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeMonitorSpec(out); err != nil {
			t.Fatalf("a decoded spec does not decode again: %v\n%s", err, out)
		}
	})
}
