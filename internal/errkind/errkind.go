// Package errkind holds the kinds of error the domain packages share
// (Invalid, NotFound, Conflict, ...), so that one function can map an error
// to a status code by asking Of for its kind, whichever package made it.
//
// A package names the kinds it returns as its own sentinels
// (registry.ErrNotFound is NotFound) and makes errors of a kind with New,
// which read as a plain message for the caller yet match the kind under
// errors.Is.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is a class of failure that callers tell apart. A Kind is an error
// whose text is its name, so that wrapping one with %w reads as before
// ("conflict: column age is text").
type Kind string

func (k Kind) Error() string { return string(k) }

// The kinds.
const (
	// Invalid: the caller sent something unusable; the message says what
	// to fix.
	Invalid Kind = "invalid"
	// NotFound: what the call names does not exist.
	NotFound Kind = "not found"
	// Conflict: the change clashes with the current state.
	Conflict Kind = "conflict"
	// TooLarge: the caller sent more than a configured bound allows.
	TooLarge Kind = "too large"
	// Forbidden: the caller is known but may not do this.
	Forbidden Kind = "forbidden"
	// RateLimited: the caller is over its request rate; it may retry later.
	RateLimited Kind = "rate limited"
	// Unavailable: the service, or a store it needs, cannot take the call
	// for now (starting, overloaded, a circuit breaker open); the same
	// call may succeed shortly.
	Unavailable Kind = "unavailable"
)

// Of returns the kind of err: the first Kind met unwrapping it, in the order
// of errors.As, or "" when err has none (a failure of the service's own).
func Of(err error) Kind {
	var k Kind
	errors.As(err, &k)
	return k
}

// Error is a message of a kind.
type Error struct {
	// Kind is what the error matches under errors.Is: a Kind, or a
	// package's own sentinel, which may itself be an Error of a Kind
	// (serving.ErrInvalidInput is one of Invalid).
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// New returns an error of kind with a formatted message. The message is the
// whole text: the kind's name is not added to it.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
