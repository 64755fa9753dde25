package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
)

// cmdScan implements `mbus-gateway scan --device DEV [--baud N]
// [--mode primary|secondary] [--format json|text]`: it searches the bus
// for meters, reports progress on stderr and prints what it found on
// stdout (one JSON object per meter and line, or a table), then on stderr
// how many probes it took. Interrupted (SIGINT), it prints what it found
// so far and exits 1, as it does when meters answered a secondary search
// but none could be read.
func cmdScan(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs, bf := newBusFlagSet("scan", stderr,
		"usage: mbus-gateway scan --device DEV [--baud N] [--mode primary|secondary] [--format json|text]",
		"Searches the bus for meters.")
	mode := fs.String("mode", "primary", "primary (addresses 0-250) or secondary (wildcard search by ID)")
	m, port, code := bf.start(ctx, fs, args, stderr, func() error {
		if *mode != "primary" && *mode != "secondary" {
			return usageError{fmt.Sprintf("--mode %q: want primary or secondary", *mode)}
		}
		return nil
	})
	if code >= 0 {
		return code
	}
	defer port.Close()
	var last master.Progress
	show := master.ProgressWriter(stderr)
	progress := func(p master.Progress) { last = p; show(p) }
	scan := m.ScanPrimary
	if *mode == "secondary" {
		scan = m.ScanSecondary
	}
	found, err := scan(ctx, progress)
	if perr := master.WriteFound(stdout, bf.format, found); perr != nil {
		fmt.Fprintf(stderr, "scan: %v\n", perr)
		return 1
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "scan: interrupted, %d found so far\n", len(found))
		return 1
	case errors.Is(err, master.ErrUnresolved):
		fmt.Fprintf(stderr, "scan: %v after %d probes; if the meters answer late, raise --extra-timeout\n", err, last.Probes)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "scan: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "scan: done, %d found in %d probes\n", len(found), last.Probes)
	return 0
}
