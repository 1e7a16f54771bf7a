package featurestore

import (
	"errors"
	"fmt"
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
)

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func invalid(format string, args ...any) error {
	return &kindError{ErrInvalid, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &kindError{ErrNotFound, fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &kindError{ErrConflict, fmt.Sprintf(format, args...)}
}

// Invalid returns an error matching ErrInvalid, for backends and decoders that
// must report a caller's mistake.
func Invalid(format string, args ...any) error { return invalid(format, args...) }

// NotFound returns an error matching ErrNotFound.
func NotFound(format string, args ...any) error { return notFound(format, args...) }
