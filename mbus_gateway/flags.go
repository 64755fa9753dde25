package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet starts the flags of a subcommand: parse errors go to stderr,
// and -h prints the usage lines, then the flags with their defaults.
func newFlagSet(name string, stderr io.Writer, usage ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		for _, line := range usage {
			fmt.Fprintln(stderr, line)
		}
		fs.PrintDefaults()
	}
	return fs
}

// flagExit maps a flag parsing error to the exit code: 0 for -h, 2 else.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// usageError is a problem with the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parseFlags parses args into fs and reports problems on stderr; it
// returns the exit code to end with, or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, check func() error) int {
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if err := check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return -1
}
