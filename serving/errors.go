package serving

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/errkind"
)

// ErrInvalidInput: a request the caller must fix (malformed JSON, an unknown
// input, a wrong shape or type). It is of kind errkind.Invalid.
var ErrInvalidInput = errkind.New(errkind.Invalid, "invalid input")

// errForbidden: the caller's key lacks the role a route needs.
const errForbidden = errkind.Forbidden

// errRateLimited: the caller is over its request rate.
const errRateLimited = errkind.RateLimited

// errTooLarge: a request over a size bound (limits.max_tensor_elements); the
// message names the bound.
const errTooLarge = errkind.TooLarge

// ErrNotReady: the server, or the model asked for, cannot serve yet. It is
// of kind errkind.Unavailable.
var ErrNotReady = errkind.New(errkind.Unavailable, "not ready")

func invalidInput(format string, args ...any) error {
	return errkind.New(ErrInvalidInput, format, args...)
}

func notReady(format string, args ...any) error { return errkind.New(ErrNotReady, format, args...) }

// statusOfKind is the HTTP status of each kind of error.
var statusOfKind = map[errkind.Kind]int{
	errkind.Invalid:     fiber.StatusBadRequest,
	errkind.Forbidden:   fiber.StatusForbidden,
	errkind.NotFound:    fiber.StatusNotFound,
	errkind.Conflict:    fiber.StatusConflict,
	errkind.TooLarge:    fiber.StatusRequestEntityTooLarge,
	errkind.RateLimited: fiber.StatusTooManyRequests,
	errkind.Unavailable: fiber.StatusServiceUnavailable,
}

// statusOf maps an error to its HTTP status. It is the one place that does:
// by the error's kind, else by the few sentinels that have none, else 500.
func statusOf(err error) int {
	if code, ok := statusOfKind[errkind.Of(err)]; ok {
		return code
	}
	var fe *fiber.Error
	switch {
	case errors.Is(err, auth.ErrNoKey), errors.Is(err, auth.ErrBadKey):
		return fiber.StatusUnauthorized
	case errors.Is(err, errUnsupportedEncoding):
		return fiber.StatusUnsupportedMediaType
	case errors.As(err, &fe):
		return fe.Code
	}
	return fiber.StatusInternalServerError
}
