package drift

import (
	"errors"

	"github.com/mlgate/mlgate/internal/errkind"
)

// Errors returned by the drift package, wrapped with a message that says what
// was wrong. ErrInvalid and ErrNotFound are the kinds of package errkind,
// which callers test with errors.Is and map to status codes.
const (
	// ErrInvalid: the caller sent something unusable (a malformed baseline,
	// monitor spec or value). The message names the field.
	ErrInvalid = errkind.Invalid
	// ErrNotFound: the monitor does not exist.
	ErrNotFound = errkind.NotFound
)

// Errors of the alert notifier, for its own callers.
var (
	// ErrQueueFull: the notifier's queue is full and the alert was dropped.
	ErrQueueFull = errors.New("alert queue full")
	// ErrClosed: the notifier is closed.
	ErrClosed = errors.New("notifier closed")
	// ErrForbiddenAddress: a webhook's host is, or resolves to, an address
	// alerts may not be posted to (see CheckWebhookAddr).
	ErrForbiddenAddress = errors.New("address not allowed")
)

func invalid(format string, args ...any) error { return errkind.New(ErrInvalid, format, args...) }

func notFound(format string, args ...any) error { return errkind.New(ErrNotFound, format, args...) }

// Invalid returns an error matching ErrInvalid, for callers that find a
// monitor unusable (a baseline that cannot be found, say).
func Invalid(format string, args ...any) error { return invalid(format, args...) }
