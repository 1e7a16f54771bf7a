package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string such as
// "30s", "1m30s" or "24h". Convert with time.Duration(d).
type Duration time.Duration

// String returns the duration in time.Duration's notation, e.g. "2m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes the duration as its String form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string such as "30s" or "24h".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, such as 500ms, 30s, 5m or 24h", text)
	}
	*d = Duration(v)
	return nil
}

// Size is a non-negative number of bytes. It is written as a plain integer
// or an integer followed by a unit: B, KB, MB, GB (powers of 1000) or
// KiB, MiB, GiB (powers of 1024), e.g. "256MiB". A space may separate the
// number from the unit.
type Size int64

// Size units.
const (
	B   Size = 1
	KB       = 1000 * B
	MB       = 1000 * KB
	GB       = 1000 * MB
	KiB      = 1024 * B
	MiB      = 1024 * KiB
	GiB      = 1024 * MiB
)

// sizeUnits maps each accepted unit suffix to its multiplier.
var sizeUnits = map[string]Size{
	"": B, "B": B,
	"KB": KB, "MB": MB, "GB": GB,
	"KiB": KiB, "MiB": MiB, "GiB": GiB,
}

// ParseSize parses a size such as "1024", "16MB" or "256MiB".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	end := strings.IndexFunc(t, func(r rune) bool {
		return (r < '0' || r > '9') && r != '-' && r != '+'
	})
	if end < 0 {
		end = len(t)
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: missing number", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, numError("size", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB or GiB)", s, unit)
	}
	if n > int64(maxSize/mult) {
		return 0, fmt.Errorf("invalid size %q: %w", s, strconv.ErrRange)
	}
	return Size(n) * mult, nil
}

const maxSize = Size(1<<63 - 1)

// String returns the size with the largest binary unit that divides it
// exactly, e.g. "256MiB", or in bytes, e.g. "1000B". ParseSize accepts it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		size Size
	}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText encodes the size as its String form.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size with ParseSize.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// numError reports that s is not a valid what (e.g. "integer"), keeping
// only the reason from a strconv error.
func numError(what, s string, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		err = ne.Err
	}
	return fmt.Errorf("invalid %s %q: %w", what, s, err)
}
