package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon"
)

// cmdRun is `mbus-gateway run [--config FILE]`: the gateway itself, until
// SIGINT or SIGTERM; SIGHUP re-reads the options file.
func cmdRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	flags := newFlagSet("run", stderr, "usage: mbus-gateway run [--config FILE]")
	file := flags.String("config", "", "options file, JSON or YAML (default "+config.AddonOptions+" when present)")
	if err := flags.Parse(args); err != nil {
		return flagExit(err)
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "mbus-gateway run: unexpected arguments: %v\n", flags.Args())
		return 2
	}
	path, err := config.Path(*file)
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
	return runDaemon(ctx, opts, daemon.Deps{
		Version: version,
		LogOut:  stderr,
		Reload:  func() (*config.Options, error) { return config.Load(path) },
		Hup:     hup,
	}, "mbus-gateway run: ", stderr)
}

// runDaemon runs the gateway and turns the outcome into an exit code; an
// error from before the log exists goes to stderr, each line after
// prefix. It is the common path of `run` and `demo`.
func runDaemon(ctx context.Context, opts *config.Options, deps daemon.Deps, prefix string, stderr io.Writer) int {
	err := daemon.Run(ctx, opts, deps)
	if err == nil {
		return 0
	}
	if !errors.Is(err, daemon.ErrLogged) {
		printLines(stderr, prefix, err.Error())
	}
	return 1
}
