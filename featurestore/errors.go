package featurestore

import (
	"errors"

	"github.com/mlgate/mlgate/internal/errkind"
)

// Errors of the feature store, wrapped with a message that says what was
// wrong. Callers test them with errors.Is and map them to status codes.
var (
	// ErrNotFound: the view does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the caller sent something unusable.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the change would break something that depends on it.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: a store is not taking calls for now (its circuit
	// breaker is open); the same call may succeed shortly.
	ErrUnavailable = errors.New("unavailable")
)

func invalid(format string, args ...any) error  { return errkind.New(ErrInvalid, format, args...) }
func notFound(format string, args ...any) error { return errkind.New(ErrNotFound, format, args...) }
func conflict(format string, args ...any) error { return errkind.New(ErrConflict, format, args...) }
func unavailable(format string, args ...any) error {
	return errkind.New(ErrUnavailable, format, args...)
}

// Invalid returns an error matching ErrInvalid, for backends and decoders that
// must report a caller's mistake.
func Invalid(format string, args ...any) error { return invalid(format, args...) }

// NotFound returns an error matching ErrNotFound.
func NotFound(format string, args ...any) error { return notFound(format, args...) }
