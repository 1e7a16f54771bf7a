package cassandra

import (
	"fmt"
	"log/slog"
	"strings"
)

// gocqlLog hands gocql's log lines (failed dials, reconnections) to slog as
// warnings; it is the driver's gocql.StdLogger.
type gocqlLog struct{ log *slog.Logger }

func (l gocqlLog) Print(v ...any) { l.log.Warn(strings.TrimSpace(fmt.Sprint(v...))) }

func (l gocqlLog) Printf(format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l gocqlLog) Println(v ...any) { l.log.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }
