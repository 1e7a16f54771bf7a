package drifttest

import (
	"testing"

	"github.com/mlgate/mlgate/drift"
)

func TestMemFleet(t *testing.T) {
	TestFleet(t, func(*testing.T) drift.Fleet { return NewMemFleet() })
}
