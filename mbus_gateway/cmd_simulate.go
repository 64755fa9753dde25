package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// cmdSimulate is `mbus-gateway simulate`: a software meter bus served
// over TCP or a pseudo-terminal until SIGINT.
func cmdSimulate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c sim.Config
	baud, delay := 0, sim.DefaultResponseDelay
	fs := newFlagSet("simulate", stderr,
		"usage: mbus-gateway simulate --listen tcp://HOST:PORT|pty [--bus FILE | --frames DIR] [--baud N] [--delay D]")
	fs.StringVar(&c.Listen, "listen", "", "where to serve: tcp://HOST:PORT or pty")
	fs.StringVar(&c.BusFile, "bus", "", "bus file (YAML) with the meters")
	fs.StringVar(&c.FramesDir, "frames", "", "folder of .hex telegrams, one meter per file (NAME_1.hex, NAME_2.hex…: one meter)")
	fs.StringVar(&c.Link, "link", "", "with --listen pty: also make this symbolic link to the device")
	fs.IntVar(&baud, "baud", 0, "pace answers at this baud rate (0: no pacing; default from the bus file)")
	fs.DurationVar(&delay, "delay", delay, "response delay of every meter (default from the bus file)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug logs every request and answer")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		// Only the flags given replace the bus file's values.
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "baud":
				c.Baud = &baud
			case "delay":
				c.Delay = &delay
			}
		})
		if fs.NArg() > 0 {
			err = fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		}
		err = errors.Join(err, c.Check())
	}
	if err == nil {
		err = c.Serve(ctx, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mbus-gateway simulate: %v\n", err)
		return 1
	}
	return 0
}
