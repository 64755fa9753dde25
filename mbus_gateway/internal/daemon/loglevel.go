package daemon

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
)

// levelFilter is a zerolog hook that drops events below a level that can
// change while the program runs (SIGHUP reloads log_level). Components
// hold copies of the logger, so the level cannot live in the logger
// itself; the hook is shared by every copy.
type levelFilter struct{ level atomic.Int32 }

// Run discards events below the current level.
func (f *levelFilter) Run(e *zerolog.Event, level zerolog.Level, _ string) {
	if int32(level) < f.level.Load() {
		e.Discard()
	}
}

// set changes the level; name is an option value such as "debug".
func (f *levelFilter) set(name string) error {
	l, err := logging.ParseLevel(name)
	if err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	f.level.Store(int32(l))
	return nil
}

// newLogger builds the process logger in the given format at the given
// level, with the level adjustable through the returned filter.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, *levelFilter, error) {
	f := &levelFilter{}
	if err := f.set(level); err != nil {
		return zerolog.Nop(), nil, err
	}
	l, err := logging.New(w, "trace", format)
	if err != nil {
		return zerolog.Nop(), nil, fmt.Errorf("log format: %w", err)
	}
	return l.Hook(f), f, nil
}

// LogLevel names the current level as the log_level option does.
func (f *levelFilter) LogLevel() string {
	l := zerolog.Level(f.level.Load()) //nolint:gosec // only zerolog.Level values are stored
	if l == zerolog.WarnLevel {
		return "warning"
	}
	return l.String()
}

// SetLogLevel changes the level; name is a log_level option value.
func (f *levelFilter) SetLogLevel(name string) error { return f.set(name) }
