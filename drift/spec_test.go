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
		{`{"name": "m", "endpoint": "e", "window": "15 minutes", "thresholds": {"psi": 0.2}}`, `monitor: field "window": want a Go duration such as "90s" or "24h", got "15 minutes"`},
		{`{` + base + `, "cooldown": "` + strings.Repeat("9", 1000) + `h"}`, `monitor: field "cooldown": want a Go duration such as "90s" or "24h", got "999`},
		{`{"name": "m", "endpoint": "e", "window": "9999999999h", "thresholds": {"psi": 0.2}}`, `monitor: field "window": want a Go duration`},
		{`{` + base + `, "` + strings.Repeat("x", 1000) + `": 1}`, `monitor: unknown field "xxx`},
		{`{"endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, "name: must not be empty"},
		{`{"name": ".hidden", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, `name: ".hidden": must start with a letter or digit`},
		{`{"name": "../../etc", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, `name: "../../etc": character '/' is not allowed`},
		{`{"name": "a\u0000b", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, `name: "a\x00b": character '\x00' is not allowed`},
		{`{"name": "` + strings.Repeat("m", 300) + `", "endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}}`, "name: at most 128 characters, got 300"},
		{`{"name": "m", "endpoint": "e/f", "window": "15m", "thresholds": {"psi": 0.2}}`, `endpoint: "e/f": character '/' is not allowed`},
		{`{"name": "m", "window": "15m", "thresholds": {"psi": 0.2}}`, "endpoint or model: one of them is required"},
		{`{` + base + `, "model": "x"}`, "endpoint and model: give one of them, not both"},
		{`{"name": "m", "endpoint": "e\n", "window": "15m", "thresholds": {"psi": 0.2}}`, `endpoint: "e\n": character '\n' is not allowed`},
		{`{"name": "m", "model": "x\u0007", "window": "15m", "thresholds": {"psi": 0.2}}`, "model: must not hold control characters"},
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
		{`{` + base + `, "webhook": {"url": "http://169.254.169.254/latest/meta-data"}}`, "webhook.url: address not allowed: 169.254.169.254 is link-local"},
		{`{` + base + `, "webhook": {"url": "http://[fe80::1%25eth0]:8080/x"}}`, "webhook.url: address not allowed: fe80::1%eth0 is link-local"},
		{`{` + base + `, "webhook": {"url": "http://[::ffff:169.254.169.254]/"}}`, "webhook.url: address not allowed: ::ffff:169.254.169.254 is link-local"},
		{`{` + base + `, "webhook": {"url": "http://0.0.0.0:9000/"}}`, "webhook.url: address not allowed: 0.0.0.0 is unspecified"},
		{`{` + base + `, "webhook": {"url": "http://[::]/"}}`, "webhook.url: address not allowed: :: is unspecified"},
		{`{` + base + `, "webhook": {"url": "http://224.0.0.1/"}}`, "webhook.url: address not allowed: 224.0.0.1 is multicast"},
		{`{` + base + `, "webhook": {"url": "http://[fd00:ec2::254]/"}}`, "webhook.url: address not allowed: fd00:ec2::254 is a cloud instance-metadata address"},
		{`{` + base + `, "webhook": {"url": "https://h/` + strings.Repeat("x", 3000) + `"}}`, "webhook.url: at most 2048 bytes, got 3010"},
		{`{` + base + `, "webhook": {"url": "https://h/", "secret": "` + strings.Repeat("s", 2000) + `"}}`, "webhook.secret: at most 1024 bytes, got 2000"},
		{`{` + base + `} {}`, "unexpected data after the JSON value"},
		{`null`, "monitor: want a JSON object, got null"},
		{`[]`, "monitor: want a JSON object, got an array"},
		{`1`, "monitor: want a JSON object, got a number"},
		{`"s"`, "monitor: want a JSON object, got a string"},
		{`true`, "monitor: want a JSON object, got true or false"},
		{``, "monitor: malformed JSON: unexpected end of input"},
		{`}`, "monitor: malformed JSON at byte 0"},
		{`{}`, "name: must not be empty"},
		{strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000), `monitor: unknown field "a"`},
		{`{"name": "m", "features": ` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`, "exceeded max depth"},
	}
	for _, tt := range tests {
		_, err := DecodeMonitorSpec([]byte(tt.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 500 {
			t.Errorf("DecodeMonitorSpec(%.100s) = %.600v, want %q in at most 500 bytes", tt.in, err, tt.want)
		}
	}
}

// TestDecodeNamedMonitorSpec takes the name from the URL: the body may
// leave it out or repeat it, not give another.
func TestDecodeNamedMonitorSpec(t *testing.T) {
	const body = `"endpoint": "e", "window": "15m", "thresholds": {"psi": 0.2}`
	for _, tt := range []struct {
		name, in, want string // want "" for accepted
	}{
		{"m", `{` + body + `}`, ""},
		{"m", `{"name": "m", ` + body + `}`, ""},
		{"m", `{"name": "other", ` + body + `}`, `name: the body names "other", the URL "m"`},
		{"..%2F..%2Fetc", `{` + body + `}`, `name: "..%2F..%2Fetc": character '%' is not allowed`},
		{"m", `null`, "monitor: want a JSON object, got null"},
	} {
		s, err := DecodeNamedMonitorSpec(tt.name, []byte(tt.in))
		switch {
		case tt.want == "" && (err != nil || s.Name != tt.name):
			t.Errorf("DecodeNamedMonitorSpec(%q, %s) = %+v, %v", tt.name, tt.in, s, err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("DecodeNamedMonitorSpec(%q, %s) = %v, want %q", tt.name, tt.in, err, tt.want)
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
		`null`,
		`[{"name": "m"}]`,
		`{"name": ".m", "endpoint": "e", "window": "1m", "thresholds": {"psi": 0.2}, "webhook": {"url": "http://169.254.169.254/"}}`,
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
