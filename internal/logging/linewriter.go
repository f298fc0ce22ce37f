package logging

import (
	"io"

	"github.com/rs/zerolog"
)

// LineWriter is an io.Writer for code that prints progress as text: each
// line written becomes one info line of log. Write whole lines: a line
// split across two writes is logged as two.
func LineWriter(log zerolog.Logger) io.Writer { return lineWriter{log: log, level: zerolog.InfoLevel} }

type lineWriter struct {
	log   zerolog.Logger
	level zerolog.Level
}

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range lines(p) {
		w.log.WithLevel(w.level).Msg(line)
	}
	return len(p), nil
}
