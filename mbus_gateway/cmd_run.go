package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// addonOptions is where the Supervisor writes the add-on's options,
// validated against config.yaml, before every start.
const addonOptions = "/data/options.json"

// errNoOptions is the error of `run` without --config outside the add-on.
var errNoOptions = errors.New("no options: give --config FILE (" + addonOptions + " does not exist, so this is not the add-on)")

// cmdRun is `mbus-gateway run [--config FILE]`: the gateway itself, until
// SIGINT or SIGTERM; SIGHUP re-reads the options file.
func cmdRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	flags := newFlagSet("run", stderr, "usage: mbus-gateway run [--config FILE]")
	file := flags.String("config", "", "options file, JSON or YAML (default "+addonOptions+" when present)")
	if err := flags.Parse(args); err != nil {
		return flagExit(err)
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "mbus-gateway run: unexpected arguments: %v\n", flags.Args())
		return 2
	}
	path, err := optionsPath(*file, os.Stat)
	if err != nil {
		fmt.Fprintf(stderr, "mbus-gateway run: %v\n", err)
		return 1
	}
	opts, err := config.Load(path)
	if err != nil {
		printLines(stderr, "mbus-gateway run: ", err.Error())
		return 1
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runDaemon(ctx, opts, settings{
		version: version,
		logOut:  stderr,
		reload:  func() (*config.Options, error) { return config.Load(path) },
		hup:     hup,
	}, "mbus-gateway run: ", stderr)
}

// runDaemon builds the daemon and runs it; a failure to build is
// reported on stderr, each line after prefix (the logger may not exist
// yet), one of running in the log. It is the common path of `run` and
// `demo`.
func runDaemon(ctx context.Context, opts *config.Options, set settings, prefix string, stderr io.Writer) int {
	tuneGC(os.Getenv)
	d, err := newDaemon(ctx, opts, set)
	if err != nil {
		printLines(stderr, prefix, err.Error())
		return 1
	}
	if err := d.Run(ctx); err != nil {
		d.log.Error().Err(err).Msg("stopped with an error")
		return 1
	}
	return 0
}

// optionsPath picks the options file: the one given, else the add-on's.
func optionsPath(given string, stat func(string) (fs.FileInfo, error)) (string, error) {
	if given != "" {
		return given, nil
	}
	if _, err := stat(addonOptions); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errNoOptions
		}
		return "", fmt.Errorf("options: %w", err)
	}
	return addonOptions, nil
}
