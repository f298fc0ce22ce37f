package logging

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// RouteRedis sends go-redis's own log lines (pool, pub/sub, Sentinel
// messages it would otherwise print as plain text on stderr) to log at
// warn level, with component=go-redis. Pass the logger without a
// component key. go-redis keeps one logger per process: the last call
// wins.
func RouteRedis(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log: log.With().Str("component", "go-redis").Logger()})
}

// redisLogger implements go-redis's internal.Logging.
type redisLogger struct{ log zerolog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
