package logging

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// TimeFormat is the timestamp of every line: RFC 3339 with milliseconds,
// enough to order an incident's lines across processes, shorter than
// time.RFC3339Nano.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Formats.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// Config says how a command logs. A zero field means the default on its
// comment.
type Config struct {
	// Level: trace, debug, info, warn or error. Default info.
	Level string
	// Format: json or console (human-readable, colored on a terminal).
	// Default json.
	Format string
}

// Flags registers --log-level and --log-format on fs, defaulting to
// FUSEBOX_LOG_LEVEL and FUSEBOX_LOG_FORMAT. formatDefault describes the
// format used when neither is set, for the help text (the caller
// resolves an empty Format before New; New takes it as json).
func Flags(fs *flag.FlagSet, getenv func(string) string, formatDefault string) *Config {
	c := &Config{}
	fs.StringVar(&c.Level, "log-level", getenv("FUSEBOX_LOG_LEVEL"), "trace, debug, info, warn or error (env FUSEBOX_LOG_LEVEL; default info)")
	fs.StringVar(&c.Format, "log-format", getenv("FUSEBOX_LOG_FORMAT"), "json or console (env FUSEBOX_LOG_FORMAT; default "+formatDefault+")")
	return c
}

// Validate reports a level or format New would refuse, naming the flag.
func (c Config) Validate() error {
	if _, err := c.level(); err != nil {
		return err
	}
	switch c.Format {
	case "", FormatJSON, FormatConsole:
		return nil
	}
	return fmt.Errorf("--log-format: want json or console, got %q", c.Format)
}

func (c Config) level() (zerolog.Level, error) {
	switch c.Level {
	case "":
		return zerolog.InfoLevel, nil
	case "trace", "debug", "info", "warn", "error":
		return zerolog.ParseLevel(c.Level)
	}
	return zerolog.NoLevel, fmt.Errorf("--log-level: want trace, debug, info, warn or error, got %q", c.Level)
}

// ErrInvalid is returned by New for a level or format it does not know.
var ErrInvalid = errors.New("logging: invalid config")

// New returns the logger writing to w: the level and format of c, a
// "time" field in TimeFormat on every line, and no component key.
func New(w io.Writer, c Config) (zerolog.Logger, error) {
	if err := c.Validate(); err != nil {
		return zerolog.Nop(), fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	lvl, _ := c.level()
	out := w
	if c.Format == FormatConsole {
		f, isFile := w.(*os.File)
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: TimeFormat, NoColor: !isFile || !isatty.IsTerminal(f.Fd())}
	}
	// A hook rather than Timestamp(): that one formats with the global
	// zerolog.TimeFieldFormat, which a command should not have to set
	// (and tests running several commands in one process would race on).
	return zerolog.New(out).Level(lvl).Hook(timestamp{}), nil
}

// timestamp adds the time field in TimeFormat.
type timestamp struct{}

func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(TimeFormat))
}
