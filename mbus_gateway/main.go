// Command mbus-gateway reads wired M-Bus meters through a serial M-Bus master
// or an M-Bus-to-TCP converter and publishes every reading to MQTT with Home
// Assistant discovery. See README.md and DOCS.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// command is one subcommand: it gets its own arguments and returns the exit code.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands in the order usage lists them.
var commands = []command{
	{"run", "run the gateway (default: /data/options.json)", cmdRun},
	{"demo", "simulated meters, embedded MQTT broker, gateway and status page", cmdDemo},
	{"decode", "decode telegram(s) given as hex", cmdDecode},
	{"read", "read one meter, all telegrams", cmdRead},
	{"scan", "scan the bus for meters", cmdScan},
	{"simulate", "serve a software meter bus over TCP or a pseudo-terminal", cmdSimulate},
	{"validate-config", "check an options file", cmdValidateConfig},
	{"migrate-config", "convert the older Python gateway's config to options YAML", cmdMigrateConfig},
	{"version", "print the version", cmdVersion},
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "mbus-gateway: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return commands[i].run(ctx, args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mbus-gateway <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'mbus-gateway <command> -h' for the flags of a command.")
}

func cmdVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "mbus-gateway %s\n", version)
	return 0
}
