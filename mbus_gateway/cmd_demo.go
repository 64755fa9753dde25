//go:build !nodemo

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
)

// parseDemoFlags reads the flags of `mbus-gateway demo`.
func parseDemoFlags(args []string, stderr io.Writer) (demo.Options, error) {
	o := demo.Options{BrokerLog: stderr}
	fs := newFlagSet("demo", stderr,
		"usage: mbus-gateway demo [--mqtt-port N] [--web-port N] [--web-listen ADDR] [--data-dir DIR]",
		"Runs simulated meters, an MQTT broker, the gateway and its status page; Ctrl-C stops.")
	fs.IntVar(&o.MQTTPort, "mqtt-port", 0, "port of the embedded MQTT broker (0: a free one)")
	fs.IntVar(&o.WebPort, "web-port", 0, "port of the status page (0: a free one)")
	fs.StringVar(&o.WebListen, "web-listen", "127.0.0.1", "address the status page listens on; anything but loopback opens it to the network")
	fs.StringVar(&o.DataDir, "data-dir", "", "keep the database here (default: a temporary folder, removed at exit)")
	fs.IntVar(&o.PollInterval, "poll-interval", 10, "seconds between two reads of a meter")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var unexpected error
	if fs.NArg() > 0 {
		unexpected = fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, errors.Join(unexpected, o.Check())
}

// cmdDemo is `mbus-gateway demo`: the gateway as `run` runs it, fed by
// the demo bus over loopback TCP and publishing to an embedded broker,
// which stop after the gateway.
func cmdDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	const prefix = "mbus-gateway demo: "
	o, err := parseDemoFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		printLines(stderr, prefix, err.Error())
		return 2
	}
	env, err := demo.Start(ctx, o)
	if err != nil {
		printLines(stderr, prefix, err.Error())
		return 1
	}
	code := runDaemon(ctx, env.Options, daemon.Deps{
		Version:   version,
		LogOut:    stderr,
		WebListen: env.WebListen,
		WebAllow:  env.WebAllow,
		Ready:     func(web, _ net.Addr) { env.Print(stdout, web) },
	}, prefix, stderr)
	if err := env.Close(); err != nil {
		printLines(stderr, prefix, err.Error())
		return 1
	}
	return code
}
