package tables

import (
	"errors"
	"fmt"
	"time"
)

// partition identifies the partition of a row: the UTC date of its
// Timestamp. Endpoint and model are columns only, so no name a caller
// chooses ever makes a directory.
type partition struct {
	day int64 // days since 1970-01-01, UTC
}

func partitionOf(r *Row) partition {
	p := partition{day: r.Timestamp.Unix() / 86400}
	if r.Timestamp.Unix()%86400 < 0 {
		p.day--
	}
	return p
}

// dir returns the partition's directory, relative to the table's.
func (p partition) dir() string {
	return dateKey + time.Unix(p.day*86400, 0).UTC().Format(dateLayout)
}

// errPoison is the kind of the errors about a row that can never be written,
// whatever the state of the disk: such a row is quarantined, not retried.
var errPoison = errors.New("row cannot be written")

// Timestamps outside these years have no YYYY-MM-DD date partition.
var (
	minTimestamp = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTimestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkRow returns an errPoison error if r cannot be written to any table.
func checkRow(r *Row) error {
	if r.Timestamp.Before(minTimestamp) || !r.Timestamp.Before(maxTimestamp) {
		return fmt.Errorf("%w: timestamp %s is outside the years 1 to 9999", errPoison, r.Timestamp.UTC().Format(time.RFC3339))
	}
	return nil
}

// poisoned reports whether err, met creating the file of a row's
// partition, is the row's fault rather than the disk's.
func poisoned(err error) bool {
	return errors.Is(err, errPoison)
}
