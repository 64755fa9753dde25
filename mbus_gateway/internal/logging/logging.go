// Package logging builds the gateway's zerolog logger: plain text for the
// Home Assistant log panel and terminals, or JSON for log collectors.
//
// Loggers are values handed to each component, never a global. A component
// tags its lines with Component ("component": "poll", "mqtt", …) and adds
// "meter" where a line concerns one meter. Secrets travel as Secret, which
// never prints its value.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// levels maps the option's level names to zerolog's; "warning" is the
// spelling of the add-on's options, "warn" zerolog's own.
var levels = map[string]zerolog.Level{
	"trace":   zerolog.TraceLevel,
	"debug":   zerolog.DebugLevel,
	"info":    zerolog.InfoLevel,
	"warning": zerolog.WarnLevel,
	"warn":    zerolog.WarnLevel,
	"error":   zerolog.ErrorLevel,
}

// ParseLevel reads a level name: trace, debug, info, warning (or warn),
// error; case does not matter.
func ParseLevel(name string) (zerolog.Level, error) {
	l, ok := levels[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return zerolog.NoLevel, fmt.Errorf("log level %q: want trace, debug, info, warning or error", name)
	}
	return l, nil
}

// New returns a logger that writes to w at the given level, as "text" (one
// readable line per event, with a timestamp) or "json" (one object per
// line). Text has colours only when w is a terminal: the Supervisor's log
// panel and journald show escape codes as garbage.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("logging: %w", err)
	}
	switch format {
	case "json":
	case "text":
		w = zerolog.ConsoleWriter{Out: w, NoColor: !colour(w), TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), fmt.Errorf("logging: log format %q: want text or json", format)
	}
	return zerolog.New(w).Level(l).With().Timestamp().Logger(), nil
}

// Component returns a sub-logger tagged with the component's name.
func Component(l zerolog.Logger, name string) zerolog.Logger {
	return l.With().Str("component", name).Logger()
}

// colour reports whether w is a terminal that should get colours: a
// character device, and NO_COLOR (no-color.org) not set.
func colour(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
