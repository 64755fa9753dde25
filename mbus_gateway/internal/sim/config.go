package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config is a run of the simulator as `mbus-gateway simulate` describes
// it: its fields are the command's flags, and Check names problems by them.
type Config struct {
	// Listen is where to serve: "pty" or "tcp://HOST:PORT"; Link, with
	// pty, a symbolic link to make to the device.
	Listen, Link string
	// BusFile (YAML) or FramesDir (.hex telegrams) gives the meters.
	BusFile, FramesDir string
	// Baud and Delay, when not nil, replace the bus file's pacing and
	// response delay.
	Baud  *int
	Delay *time.Duration
	// LogLevel is debug (every request and answer), info, warn or error.
	LogLevel string
}

// Check returns every problem of c, one per line.
func (c Config) Check() error {
	var errs []error
	if c.Listen != "pty" && !strings.HasPrefix(c.Listen, "tcp://") {
		errs = append(errs, fmt.Errorf("--listen %q: want tcp://HOST:PORT or pty", c.Listen))
	}
	if c.Link != "" && c.Listen != "pty" {
		errs = append(errs, errors.New("--link needs --listen pty"))
	}
	if (c.BusFile == "") == (c.FramesDir == "") {
		errs = append(errs, errors.New("give either --bus FILE or --frames DIR"))
	}
	if c.Baud != nil && *c.Baud < 0 {
		errs = append(errs, fmt.Errorf("--baud %d: must not be negative", *c.Baud))
	}
	if c.Delay != nil && *c.Delay < 0 {
		errs = append(errs, fmt.Errorf("--delay %v: must not be negative", *c.Delay))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Serve loads the meters, builds the bus and serves it (see ServeAt)
// until ctx ends: where and which meters go to w, the log to log.
func (c Config) Serve(ctx context.Context, w, log io.Writer) error {
	load, from := LoadFramesDir, c.FramesDir
	if c.BusFile != "" {
		load, from = LoadBusFile, c.BusFile
	}
	setup, err := load(from)
	if err != nil {
		return err
	}
	if c.Baud != nil {
		setup.Options.Baud = *c.Baud
	}
	if c.Delay != nil {
		setup.Options.ResponseDelay = *c.Delay
	}
	level, _ := zerolog.ParseLevel(c.LogLevel)
	setup.Options.Log = zerolog.New(zerolog.ConsoleWriter{Out: log, NoColor: true}).
		Level(level).With().Timestamp().Str("component", "sim").Logger()
	bus, err := setup.NewBus()
	if err != nil {
		return err
	}
	return bus.ServeAt(ctx, c.Listen, c.Link, w)
}
