package tables

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// UnknownModel is the model partition of the rows that have neither an
// endpoint nor a model version (ModelVersion 0): requests that no model
// version served, such as a call to a model that does not exist. Their
// rows keep the name asked for in ModelName, but their partition is this
// one fixed name, so that invented names never make directories. Model
// names start with a letter or digit, so none is UnknownModel.
const UnknownModel = "_unknown"

// maxPartValue bounds an encoded partition value (see escapePart), so that
// "endpoint=" and the value stay well under the 255 bytes a file name may
// hold on common file systems.
const maxPartValue = 200

// hashSuffix is the length of the "~" and hex digest that end a value
// escapePart shortened.
const hashSuffix = 1 + 16

// escapePart encodes v, any byte sequence, as the value of a partition
// directory. It is url.PathEscape's encoding, so the name is made of
// ASCII letters, digits, "-_.~$&+:=@" and %XX escapes: never a '/', a NUL
// or a control byte; a leading '.' is escaped too (%2E), so the value is
// never "." or ".." nor hidden. An encoding longer than maxPartValue bytes
// is cut, without splitting an escape, and ends in "~" and the first 16 hex
// digits of v's SHA-256, so that different long names stay apart.
func escapePart(v string) string {
	e := url.PathEscape(v)
	if strings.HasPrefix(e, ".") {
		e = "%2E" + e[1:]
	}
	if len(e) <= maxPartValue {
		return e
	}
	cut := maxPartValue - hashSuffix
	if i := strings.LastIndexByte(e[:cut], '%'); i >= 0 && i > cut-3 {
		cut = i // the escape at i does not fit whole
	}
	sum := sha256.Sum256([]byte(v))
	return e[:cut] + "~" + hex.EncodeToString(sum[:(hashSuffix-1)/2])
}

// partition identifies the partition of a row.
type partition struct {
	endpoint, model string // model only if endpoint is empty
	day             int64  // days since 1970-01-01, UTC
}

func partitionOf(r *Row) partition {
	p := partition{endpoint: r.Endpoint, day: r.Timestamp.Unix() / 86400}
	if r.Timestamp.Unix()%86400 < 0 {
		p.day--
	}
	switch {
	case p.endpoint != "":
	case r.ModelVersion == 0:
		p.model = UnknownModel
	default:
		p.model = r.ModelName
	}
	return p
}

// dir returns the partition's directory, relative to the table's.
func (p partition) dir() string {
	top := endpointKey + escapePart(p.endpoint)
	if p.endpoint == "" {
		top = modelKey + escapePart(p.model)
	}
	return filepath.Join(top, dateKey+time.Unix(p.day*86400, 0).UTC().Format(dateLayout))
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

// poisoned reports whether err, met creating the directory or file of a
// partition, is the row's fault rather than the disk's: a name the file
// system refuses.
func poisoned(err error) bool {
	return errors.Is(err, errPoison) || errors.Is(err, syscall.ENAMETOOLONG)
}
