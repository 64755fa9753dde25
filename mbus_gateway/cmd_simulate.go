package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// simulateFlags are the flags of `mbus-gateway simulate`.
type simulateFlags struct {
	listen, bus, frames, link, logLevel string
	baud                                int
	delay                               time.Duration
	set                                 map[string]bool // flags given on the command line
}

func parseSimulateFlags(args []string, stderr io.Writer) (simulateFlags, error) {
	var f simulateFlags
	fs := newFlagSet("simulate", stderr,
		"usage: mbus-gateway simulate --listen tcp://HOST:PORT|pty [--bus FILE | --frames DIR] [--baud N] [--delay D]")
	fs.StringVar(&f.listen, "listen", "", "where to serve: tcp://HOST:PORT or pty")
	fs.StringVar(&f.bus, "bus", "", "bus file (YAML) with the meters")
	fs.StringVar(&f.frames, "frames", "", "folder of .hex telegrams, one meter per file (NAME_1.hex, NAME_2.hex…: one meter)")
	fs.StringVar(&f.link, "link", "", "with --listen pty: also make this symbolic link to the device")
	fs.IntVar(&f.baud, "baud", 0, "pace answers at this baud rate (0: no pacing; default from the bus file)")
	fs.DurationVar(&f.delay, "delay", sim.DefaultResponseDelay, "response delay of every meter (default from the bus file)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug logs every request and answer")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if f.listen != "pty" && !strings.HasPrefix(f.listen, "tcp://") {
		errs = append(errs, fmt.Errorf("--listen %q: want tcp://HOST:PORT or pty", f.listen))
	}
	if f.link != "" && f.listen != "pty" {
		errs = append(errs, errors.New("--link needs --listen pty"))
	}
	if (f.bus == "") == (f.frames == "") {
		errs = append(errs, errors.New("give either --bus FILE or --frames DIR"))
	}
	if f.baud < 0 {
		errs = append(errs, fmt.Errorf("--baud %d: must not be negative", f.baud))
	}
	if f.delay < 0 {
		errs = append(errs, fmt.Errorf("--delay %v: must not be negative", f.delay))
	}
	if _, err := zerolog.ParseLevel(f.logLevel); err != nil || f.logLevel == "" {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel))
	}
	return f, errors.Join(errs...)
}

func cmdSimulate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f, err := parseSimulateFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mbus-gateway simulate: %v\n", err)
		return 1
	}
	if err := simulate(ctx, f, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "mbus-gateway simulate: %v\n", err)
		return 1
	}
	return 0
}

func simulate(ctx context.Context, f simulateFlags, stdout, stderr io.Writer) error {
	load, from := sim.LoadFramesDir, f.frames
	if f.bus != "" {
		load, from = sim.LoadBusFile, f.bus
	}
	setup, err := load(from)
	if err != nil {
		return err
	}
	if f.set["baud"] {
		setup.Options.Baud = f.baud
	}
	if f.set["delay"] {
		setup.Options.ResponseDelay = f.delay
	}
	level, _ := zerolog.ParseLevel(f.logLevel)
	setup.Options.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).
		Level(level).With().Timestamp().Str("component", "sim").Logger()
	bus, err := setup.NewBus()
	if err != nil {
		return err
	}
	return bus.ServeAt(ctx, f.listen, f.link, stdout)
}
