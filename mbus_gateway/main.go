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
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// command is one subcommand: it gets its own arguments and returns the exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"run":             {"run the gateway (default: /data/options.json)", cmdRun},
		"demo":            {"simulated meters, embedded MQTT broker, gateway and status page", cmdDemo},
		"decode":          {"decode telegram(s) given as hex", cmdDecode},
		"read":            {"read one meter, all telegrams", cmdRead},
		"scan":            {"scan the bus for meters", cmdScan},
		"simulate":        {"serve a software meter bus over TCP or a pseudo-terminal", cmdSimulate},
		"validate-config": {"check an options file", cmdValidateConfig},
		"migrate-config":  {"convert the older Python gateway's config to options YAML", cmdMigrateConfig},
		"version":         {"print the version", cmdVersion},
	}
}

var order = []string{"run", "demo", "decode", "read", "scan", "simulate", "validate-config", "migrate-config", "version"}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mbus-gateway: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd.run(ctx, args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mbus-gateway <command> [flags]")
	fmt.Fprintln(w)
	cmds := commands()
	for _, name := range order {
		fmt.Fprintf(w, "  %-16s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'mbus-gateway <command> -h' for the flags of a command.")
}

func cmdVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "mbus-gateway %s\n", version)
	return 0
}
