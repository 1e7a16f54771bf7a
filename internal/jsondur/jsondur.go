// Package jsondur is a time.Duration written in JSON as a Go duration string
// ("90s", "15m", "24h"), shared by every API body that takes a duration.
package jsondur

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Duration is a time.Duration written in JSON as a Go duration string.
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalJSON reads a JSON string holding a Go duration; null leaves d as
// it is. A value that is not a string is reported as encoding/json reports a
// type mismatch, so the caller's message names the field. Ranges (such as
// "not negative") are the caller's to check, where the field has a name.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return &json.UnmarshalTypeError{Value: kind(b), Type: reflect.TypeFor[string]()}
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a Go duration such as \"90s\" or \"24h\"", text)
	}
	*d = Duration(v)
	return nil
}

// kind names the kind of a JSON value as encoding/json's errors do.
func kind(b []byte) string {
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}
