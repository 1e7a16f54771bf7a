package serving

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/tables"
)

// ErrInvalidInput: a request the caller must fix (malformed JSON, an unknown
// input, a wrong shape or type).
var ErrInvalidInput = errors.New("invalid input")

// errForbidden: the caller's key lacks the role a route needs.
var errForbidden = errors.New("forbidden")

// errRateLimited: the caller is over its request rate.
var errRateLimited = errors.New("rate limited")

// errTooLarge: a request over a size bound (limits.max_tensor_elements); the
// message names the bound.
var errTooLarge = errors.New("too large")

// ErrNotReady: the server, or the model asked for, cannot serve yet.
var ErrNotReady = errors.New("not ready")

func invalidInput(format string, args ...any) error {
	return errkind.New(ErrInvalidInput, format, args...)
}

func notReady(format string, args ...any) error { return errkind.New(ErrNotReady, format, args...) }

// statusOf maps an error to its HTTP status. It is the one place that does.
func statusOf(err error) int {
	var fe *fiber.Error
	switch {
	case errors.Is(err, ErrInvalidInput), errors.Is(err, registry.ErrInvalid), errors.Is(err, featurestore.ErrInvalid),
		errors.Is(err, router.ErrInvalid), errors.Is(err, tables.ErrInvalid), errors.Is(err, drift.ErrInvalid):
		return fiber.StatusBadRequest
	case errors.Is(err, auth.ErrNoKey), errors.Is(err, auth.ErrBadKey):
		return fiber.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return fiber.StatusForbidden
	case errors.Is(err, errRateLimited):
		return fiber.StatusTooManyRequests
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, featurestore.ErrNotFound), errors.Is(err, router.ErrNotFound),
		errors.Is(err, drift.ErrNotFound):
		return fiber.StatusNotFound
	case errors.Is(err, registry.ErrConflict), errors.Is(err, featurestore.ErrConflict), errors.Is(err, router.ErrConflict):
		return fiber.StatusConflict
	case errors.Is(err, registry.ErrTooLarge), errors.Is(err, errTooLarge):
		return fiber.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotReady), errors.Is(err, featurestore.ErrUnavailable), errors.Is(err, errBusy):
		return fiber.StatusServiceUnavailable
	case errors.Is(err, errUnsupportedEncoding):
		return fiber.StatusUnsupportedMediaType
	case errors.As(err, &fe):
		return fe.Code
	}
	return fiber.StatusInternalServerError
}
