// Package jsonerr turns encoding/json's decoding errors into messages that a
// caller can act on: they name the field in the document's own terms.
package jsonerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Describe explains a decoding error returned by encoding/json.
func Describe(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return "expected " + kind(typeErr.Type.Kind().String()) + ", got " + typeErr.Value
		}
		return "field " + strconv.Quote(typeErr.Field) + ": expected " + kind(typeErr.Type.Kind().String()) + ", got " + typeErr.Value
	case errors.As(err, &syntaxErr):
		return "malformed JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10) + ": " + syntaxErr.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Decode decodes exactly one JSON value from data into v, refusing unknown
// fields and trailing data. Its errors are already described.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(Describe(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func kind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "interface":
		return "a value"
	}
	if strings.HasPrefix(goKind, "uint") {
		return "a non-negative whole number"
	}
	if strings.HasPrefix(goKind, "int") {
		return "a whole number"
	}
	return "a number"
}
