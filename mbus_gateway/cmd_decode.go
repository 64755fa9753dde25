package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// maxDecodeInput bounds the hex text read from stdin: far more than any
// list of telegrams (one telegram is at most 261 bytes, 783 characters).
const maxDecodeInput = 16 << 20

// cmdDecode implements `mbus-gateway decode [--format json|text] [--key HEX] [HEX ...|-]`:
// it decodes one or more RSP_UD telegrams given as hex (arguments, or
// stdin when there are none or the only one is "-") and prints one JSON
// object per line, or a table per telegram. A telegram whose records
// cannot all be decoded is still printed with the records that could be;
// every problem goes to stderr and makes the exit code 1.
func cmdDecode(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("decode", stderr,
		"usage: mbus-gateway decode [--format json|text] [--key HEX] [HEX ...|-]",
		"Decodes M-Bus telegrams given as hex digits (spaces and newlines allowed);",
		"without HEX arguments, or with \"-\", the hex is read from stdin.")
	format := fs.String("format", "json", "output format: json or text")
	keyHex := fs.String("key", "", "AES-128 key (32 hex digits) of a meter whose telegrams are encrypted (security mode 5)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	var key []byte
	if *keyHex != "" {
		k, err := mbus.ParseHex(*keyHex)
		if err != nil || len(k) != 16 {
			// The key is a secret: the message does not repeat it.
			fmt.Fprintln(stderr, "decode: --key: want 32 hex digits (16 bytes)")
			return 2
		}
		key = k
	}
	if *format != "json" && *format != "text" {
		fmt.Fprintf(stderr, "decode: --format %q: want json or text\n", *format)
		return 2
	}
	text, err := decodeInput(fs.Args(), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "decode: %v\n", err)
		return 1
	}
	raw, err := mbus.ParseHex(text)
	if err != nil {
		fmt.Fprintf(stderr, "decode: input: %v\n", err)
		return 1
	}
	print := printJSON
	if *format == "text" {
		print = printText
	}
	code := 0
	for n := 1; len(raw) > 0; n++ {
		size, err := frameSize(raw)
		if err != nil {
			fmt.Fprintf(stderr, "decode: telegram %d: %v\n", n, err)
			return 1
		}
		t, err := mbus.ParseTelegramKey(raw[:size], key)
		raw = raw[size:]
		// A telegram that broke off mid-records still shows what decoded.
		if t != nil && (err == nil || len(t.Records) > 0) {
			if perr := print(stdout, n, t); perr != nil {
				fmt.Fprintf(stderr, "decode: %v\n", perr)
				return 1
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "decode: telegram %d: %v\n", n, err)
			code = 1
		}
	}
	return code
}

// decodeInput returns the hex text from the arguments or stdin.
func decodeInput(args []string, stdin io.Reader) (string, error) {
	if len(args) > 0 && (len(args) != 1 || args[0] != "-") {
		for _, a := range args {
			if a == "-" {
				return "", errors.New(`"-" (stdin) cannot be mixed with hex arguments`)
			}
		}
		return strings.Join(args, " "), nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxDecodeInput+1))
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	if len(b) > maxDecodeInput {
		return "", fmt.Errorf("stdin: more than %d bytes of input", maxDecodeInput)
	}
	return string(b), nil
}

// frameSize tells how many bytes the frame at the start of b takes, or why
// b does not start with a whole frame.
func frameSize(b []byte) (int, error) {
	n, err := mbus.FrameLen(b)
	if err != nil {
		return 0, err
	}
	if n == 0 || n > len(b) {
		_, _, err := mbus.DecodeFrame(b)
		return 0, err
	}
	return n, nil
}

func printJSON(w io.Writer, _ int, t *mbus.Telegram) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// printText writes a header line and a table of records.
func printText(w io.Writer, n int, t *mbus.Telegram) error {
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
		fmt.Fprintf(&sb, "\napplication error %d: %s", t.AppError, mbus.AppErrorName(t.AppError))
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
			if r.Value.Kind == mbus.KindNone {
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
