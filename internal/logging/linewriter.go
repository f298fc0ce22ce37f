package logging

import (
	"io"
	"strings"

	"github.com/rs/zerolog"
)

// LineWriter is an io.Writer for code that prints progress as text: each
// line written becomes one info line of log. Write whole lines: a line
// split across two writes is logged as two.
func LineWriter(log zerolog.Logger) io.Writer { return lineWriter{log: log} }

type lineWriter struct{ log zerolog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.log.Info().Msg(line)
		}
	}
	return len(p), nil
}
