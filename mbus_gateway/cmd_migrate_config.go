package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// cmdMigrateConfig converts the older Python gateway's config.json (v1) or
// YAML (v2) into options YAML: to stdout or -o OUT, notes to stderr. When
// the result still needs fixing it is written anyway, the problems follow
// the notes, and the exit code is 1.
func cmdMigrateConfig(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("migrate-config", stderr,
		"usage: mbus-gateway migrate-config OLD [-o OUT]",
		"Converts the older gateway's config.json (v1) or YAML (v2); OLD may be - for stdin.")
	out := fs.String("o", "", "write the options to `FILE` instead of stdout")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	name := rest[0]
	var old []byte
	if name == "-" {
		old, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
		name = "stdin"
	} else {
		old, err = os.ReadFile(name) //nolint:gosec // G703: OLD is the operator's own argument
	}
	if err != nil {
		fmt.Fprintf(stderr, "mbus-gateway: %v\n", err)
		return 1
	}

	yaml, notes, migrateErr := config.Migrate(old, name)
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if yaml != nil {
		if err := writeOutput(*out, stdout, yaml); err != nil {
			fmt.Fprintf(stderr, "mbus-gateway: %v\n", err)
			return 1
		}
	}
	if migrateErr != nil {
		printLines(stderr, "", migrateErr.Error())
		return 1
	}
	return 0
}

// writeOutput writes to path (see config.WriteFile), or to stdout when
// path is empty.
func writeOutput(path string, stdout io.Writer, data []byte) error {
	if path == "" {
		_, err := stdout.Write(data)
		return err
	}
	return config.WriteFile(path, data)
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("OLD -o OUT" as well as "-o OUT OLD").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
