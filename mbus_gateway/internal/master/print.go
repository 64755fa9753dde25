package master

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// ProgressWriter reports a scan's progress on w as `mbus-gateway scan`
// does: a line every 10 steps, when a meter turns up, and at the end of a
// primary scan.
func ProgressWriter(w io.Writer) func(Progress) {
	lastFound := 0
	return func(p Progress) {
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

// foundJSON is one found meter as `mbus-gateway scan` prints it.
type foundJSON struct {
	Primary      *int         `json:"primary,omitempty"`
	Secondary    string       `json:"secondary,omitempty"`
	ID           string       `json:"id,omitempty"`
	Manufacturer string       `json:"manufacturer,omitempty"`
	Version      *byte        `json:"version,omitempty"`
	Medium       *mbus.Medium `json:"medium,omitempty"`
	Collision    bool         `json:"collision"`
}

func toJSON(f Found) foundJSON {
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

// WriteFound prints what a scan found in format "json" (one object per
// meter and line) or "text" (a table).
func WriteFound(w io.Writer, format string, found []Found) error {
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
