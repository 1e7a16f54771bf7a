package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetLog sends go-redis's own log lines (failed dials, pool events) to log as
// warnings, instead of the standard logger's plain text. go-redis has one
// logger per process, so this applies to every Store.
func SetLog(log *slog.Logger) {
	goredis.SetLogger(redisLog{log.With("component", "go-redis")})
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
