package serving

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/tables"
)

// TestStatusOf maps the errors of every package, as those packages make
// them, to their HTTP status; their messages are the caller's and stay as
// they were made.
func TestStatusOf(t *testing.T) {
	refused := router.Policy{Variants: []router.Variant{{Name: "a", Model: "churn@nope", Weight: 1}}}.
		Check(func(router.ModelRef) error { return registry.NotFound("model churn has no @nope") })
	tests := []struct {
		name   string
		err    error
		status int
		text   string
	}{
		{"registry invalid", registry.Invalid("model name: must not be empty"), 400, "model name: must not be empty"},
		{"registry not found", registry.NotFound("model churn"), 404, "model churn"},
		{"registry conflict", fmt.Errorf("delete: %w", registry.ErrConflict), 409, "delete: conflict"},
		{"registry too large", registry.TooLarge("upload over 10 bytes"), 413, "upload over 10 bytes"},
		{"featurestore invalid", featurestore.Invalid("row 0: bad"), 400, "row 0: bad"},
		{"featurestore not found", featurestore.NotFound("view user"), 404, "view user"},
		{"featurestore conflict", fmt.Errorf("%w: column age is text", featurestore.ErrConflict), 409, "conflict: column age is text"},
		{"featurestore unavailable", errkind.New(featurestore.ErrUnavailable, "store redis is unavailable"), 503, "store redis is unavailable"},
		{"router not found", router.NotFound("endpoint churn"), 404, "endpoint churn"},
		{"router invalid over a registry not found", refused, 400, `variants[0].model: "churn@nope": model churn has no @nope`},
		{"drift invalid", drift.Invalid("baseline: missing"), 400, "baseline: missing"},
		{"drift not found", errkind.New(drift.ErrNotFound, "monitor m"), 404, "monitor m"},
		{"drift queue full", drift.ErrQueueFull, 500, "alert queue full"},
		{"tables invalid", errkind.New(tables.ErrInvalid, "tables: Dir is required"), 400, "tables: Dir is required"},
		{"invalid input", invalidInput("inputs: want an object"), 400, "inputs: want an object"},
		{"not ready", notReady("model churn is loading"), 503, "model churn is loading"},
		{"forbidden", fmt.Errorf("%w: key k lacks the admin role", errForbidden), 403, "forbidden: key k lacks the admin role"},
		{"rate limited", fmt.Errorf("%w: key k", errRateLimited), 429, "rate limited: key k"},
		{"too large", errkind.New(errTooLarge, "shape [9] holds 9 elements"), 413, "shape [9] holds 9 elements"},
		{"busy", errkind.New(errBusy, "retry shortly"), 503, "retry shortly"},
		{"unsupported encoding", errkind.New(errUnsupportedEncoding, "Content-Encoding br"), 415, "Content-Encoding br"},
		{"no key", auth.ErrNoKey, 401, auth.ErrNoKey.Error()},
		{"bad key", fmt.Errorf("auth: %w", auth.ErrBadKey), 401, "auth: unknown API key"},
		{"fiber", fiber.ErrMethodNotAllowed, 405, "Method Not Allowed"},
		{"internal", errkind.New(errInternal, "internal error"), 500, "internal error"},
		{"anything else", errors.New("disk on fire"), 500, "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.err); got != tt.status {
				t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.status)
			}
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("message = %q, want %q", got, tt.text)
			}
		})
	}
}
