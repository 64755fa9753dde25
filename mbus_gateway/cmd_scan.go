package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// cmdScan implements `mbus-gateway scan --device DEV [--baud N]
// [--mode primary|secondary] [--format json|text]`: it searches the bus
// for meters, reports progress on stderr and prints what it found on
// stdout (one JSON object per meter and line, or a table). Interrupted
// (SIGINT), it prints what it found so far and exits 1.
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
	progress := scanProgress(stderr)
	var (
		found []master.Found
		err   error
	)
	if *mode == "primary" {
		found, err = m.ScanPrimary(ctx, progress)
	} else {
		found, err = m.ScanSecondary(ctx, progress)
	}
	if perr := printFound(stdout, bf.format, found); perr != nil {
		fmt.Fprintf(stderr, "scan: %v\n", perr)
		return 1
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "scan: interrupted, %d found so far\n", len(found))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "scan: %v\n", err)
		return 1
	}
	return 0
}

// scanProgress writes a line every 10 steps, when a meter turns up, and
// at the end of a primary scan.
func scanProgress(w io.Writer) func(master.Progress) {
	lastFound := 0
	return func(p master.Progress) {
		if p.Done%10 != 0 && p.Found == lastFound && p.Done != p.Total {
			return
		}
		lastFound = p.Found
		if p.Total > 0 {
			fmt.Fprintf(w, "scan: %d/%d addresses, %d found\n", p.Done, p.Total, p.Found)
			return
		}
		fmt.Fprintf(w, "scan: %d probes, %d found\n", p.Done, p.Found)
	}
}

// foundJSON is one found meter on stdout.
type foundJSON struct {
	Primary      *int         `json:"primary,omitempty"`
	Secondary    string       `json:"secondary,omitempty"`
	ID           string       `json:"id,omitempty"`
	Manufacturer string       `json:"manufacturer,omitempty"`
	Version      *byte        `json:"version,omitempty"`
	Medium       *mbus.Medium `json:"medium,omitempty"`
	Collision    bool         `json:"collision"`
}

func toJSON(f master.Found) foundJSON {
	j := foundJSON{Collision: f.Collision}
	if f.Primary >= 0 {
		p := f.Primary
		j.Primary = &p
	}
	if s := f.Secondary; s != (mbus.SecondaryAddress{}) {
		j.Secondary = s.String()
		j.ID = s.ID()
		if !f.Collision {
			v, m := s.Version(), s.Medium()
			j.Manufacturer = mbus.ManufacturerName(s.ManufacturerCode())
			j.Version, j.Medium = &v, &m
		}
	}
	return j
}

func printFound(w io.Writer, format string, found []master.Found) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, f := range found {
			if err := enc.Encode(toJSON(f)); err != nil {
				return fmt.Errorf("json: %w", err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRIMARY\tSECONDARY\tMANUFACTURER\tVERSION\tMEDIUM\tNOTE")
	for _, f := range found {
		j := toJSON(f)
		cols := []string{"-", "-", "-", "-", "-", ""}
		if j.Primary != nil {
			cols[0] = strconv.Itoa(*j.Primary)
		}
		if j.Secondary != "" {
			cols[1] = j.Secondary
		}
		if j.Version != nil {
			cols[2], cols[3], cols[4] = j.Manufacturer, strconv.Itoa(int(*j.Version)), j.Medium.String()
		}
		if f.Collision {
			cols[5] = "collision: several meters answer here"
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}
