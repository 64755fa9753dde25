package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

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
	keyHex := keyFlag(fs)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	key, err := parseKey(*keyHex)
	if err != nil {
		fmt.Fprintf(stderr, "decode: %v\n", err)
		return 2
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
	print := telegramPrinter(*format)
	code, n := 0, 0
	for t, err := range mbus.ParseTelegrams(raw, key) {
		n++
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

// telegramPrinter returns how decode and read print a telegram in format.
func telegramPrinter(format string) func(w io.Writer, n int, t *mbus.Telegram) error {
	if format == "text" {
		return mbus.WriteText
	}
	return func(w io.Writer, _ int, t *mbus.Telegram) error { return mbus.WriteJSON(w, t) }
}

// keyFlag registers --key, the AES-128 key of an encrypting meter.
func keyFlag(fs *flag.FlagSet) *string {
	return fs.String("key", "", "AES-128 key (32 hex digits) of a meter whose telegrams are encrypted (security mode 5)")
}

// parseKey reads the value of --key: nil when empty.
func parseKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := mbus.ParseKey(s)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	return k, nil
}
