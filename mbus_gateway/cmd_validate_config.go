package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// cmdValidateConfig checks an options file exactly as written (environment
// overrides are not applied): "FILE: ok" and exit 0, or every problem on
// its own line on stderr and exit 1. Warnings go to stderr and keep exit 0.
func cmdValidateConfig(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate-config", stderr,
		"usage: mbus-gateway validate-config FILE",
		"Checks an options file (JSON or YAML); prints each problem on its own line.")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "mbus-gateway: %v\n", err)
		return 1
	}
	opts, err := config.Parse(data, file)
	if err != nil {
		printLines(stderr, "", err.Error())
		return 1
	}
	for _, w := range opts.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return 0
}

// printLines writes text line by line, each with prefix.
func printLines(w io.Writer, prefix, text string) {
	for line := range strings.Lines(text) {
		fmt.Fprintf(w, "%s%s\n", prefix, strings.TrimSuffix(line, "\n"))
	}
}
