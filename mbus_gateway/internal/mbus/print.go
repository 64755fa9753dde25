package mbus

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes t as one line of JSON, as `mbus-gateway decode` prints it.
func WriteJSON(w io.Writer, t *Telegram) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// WriteText writes t as `mbus-gateway decode --format text` prints it: a
// header line naming it telegram n, then a table of its records.
func WriteText(w io.Writer, n int, t *Telegram) error {
	h := t.Header
	var sb strings.Builder
	fmt.Fprintf(&sb, "telegram %d: CI 0x%02X", n, t.CI)
	if h.ID != "" {
		fmt.Fprintf(&sb, ", id %s", h.ID)
	}
	if h.Manufacturer != "" {
		fmt.Fprintf(&sb, ", manufacturer %s, version %d", h.Manufacturer, h.Version)
	}
	if h.ID != "" {
		fmt.Fprintf(&sb, ", medium %s", h.Medium)
	}
	fmt.Fprintf(&sb, ", access %d, status 0x%02X", h.AccessNumber, h.Status)
	if flags := h.StatusFlags(); len(flags) > 0 {
		fmt.Fprintf(&sb, " (%s)", strings.Join(flags, ", "))
	}
	if t.AppError >= 0 {
		fmt.Fprintf(&sb, "\napplication error %d: %s", t.AppError, AppErrorName(t.AppError))
	}
	if t.Alarm != nil {
		fmt.Fprintf(&sb, "\nalarm, status 0x%02X", t.Alarm.Status)
	}
	if t.SecurityMode != 0 {
		fmt.Fprintf(&sb, "\ndecrypted (security mode %d)", t.SecurityMode)
	}
	sb.WriteByte('\n')
	if len(t.Records) > 0 {
		tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tUNIT\tFUNCTION\tSTORAGE\tTARIFF\tSUBUNIT\tDIF\tVIF")
		for _, r := range t.Records {
			v := r.Value.String()
			if r.Value.Kind == KindNone {
				v = "-"
			}
			if r.Error != 0 {
				v += " (" + r.Error.String() + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%x\t%x\n",
				r.Key, v, r.Unit, r.Function, r.Storage, r.Tariff, r.Subunit, string(r.DIF), string(r.VIF))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(t.ManufacturerData) > 0 {
		fmt.Fprintf(&sb, "manufacturer data: %x\n", t.ManufacturerData)
	}
	if t.MoreRecordsFollow {
		sb.WriteString("more records follow\n")
	}
	sb.WriteByte('\n')
	_, err := io.WriteString(w, sb.String())
	return err
}
