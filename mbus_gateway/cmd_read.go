package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// busFlags are the flags of the commands that talk to a bus.
type busFlags struct {
	device string
	baud   int
	parity string
	extra  time.Duration
	format string
	port   transport.Options // from baud and parity, once checked
}

// newBusFlagSet is newFlagSet for a command that talks to a bus, with
// the bus flags registered.
func newBusFlagSet(name string, stderr io.Writer, usage ...string) (*flag.FlagSet, *busFlags) {
	fs := newFlagSet(name, stderr, usage...)
	b := &busFlags{}
	fs.StringVar(&b.device, "device", "", "serial device (/dev/ttyUSB0, /dev/serial/by-id/…) or tcp://host:port of a converter")
	fs.IntVar(&b.baud, "baud", transport.DefaultBaud, "bus speed: 300, 600, 1200, 2400, 4800, 9600, 19200 or 38400")
	fs.StringVar(&b.parity, "parity", "even", "serial parity: even, none or odd")
	fs.DurationVar(&b.extra, "extra-timeout", 0, "added to the response timeout, for converters that add latency (e.g. 100ms); 0: 20ms over TCP, none on a serial port")
	fs.StringVar(&b.format, "format", "json", "output format: json or text")
	return fs, b
}

// check validates the bus flags and that no argument is left over.
func (b *busFlags) check(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if b.device == "" {
		return usageError{"--device is required (a serial path or tcp://host:port)"}
	}
	if b.format != "json" && b.format != "text" {
		return usageError{fmt.Sprintf("--format %q: want json or text", b.format)}
	}
	if err := transport.CheckBaud(b.baud); err != nil {
		return fmt.Errorf("--baud: %w", err)
	}
	if b.extra < 0 {
		return fmt.Errorf("--extra-timeout %v: must not be negative", b.extra)
	}
	var err error
	if b.port.Parity, err = transport.ParseParity(b.parity); err != nil {
		return fmt.Errorf("--parity: %w", err)
	}
	b.port.Baud = b.baud
	return nil
}

// start parses args into fs, checks the bus flags and then the
// command's own (check), and opens the bus. Problems go to stderr; code
// is the exit code to end with, or -1 when the caller goes on and closes
// port.
func (b *busFlags) start(ctx context.Context, fs *flag.FlagSet, args []string, stderr io.Writer, check func() error) (m *master.Master, port io.Closer, code int) {
	if code := parseFlags(fs, args, stderr, func() error {
		if err := b.check(fs); err != nil {
			return err
		}
		return check()
	}); code >= 0 {
		return nil, nil, code
	}
	p, err := transport.Open(ctx, b.device, b.port)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, nil, 1
	}
	return master.New(p, master.Options{Baud: b.baud, Extra: master.ExtraFor(b.device, b.extra)}), p, -1
}

// cmdRead implements `mbus-gateway read --device DEV [--baud N] --address A
// [--key HEX] [--format json|text]`: it reads every telegram of one meter,
// decrypted with the key when it encrypts them, and prints
// them as `decode` does (one JSON object per telegram and line, or a table
// per telegram). Records that cannot be decoded are reported on stderr
// after the telegrams and make the exit code 1.
func cmdRead(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs, bf := newBusFlagSet("read", stderr,
		"usage: mbus-gateway read --device DEV [--baud N] --address A [--key HEX] [--format json|text]",
		"Reads all telegrams of one meter.")
	address := fs.String("address", "", "primary address 0-250 or 16-hex-digit secondary address")
	keyHex := keyFlag(fs)
	var addr mbus.Address
	var key []byte
	m, port, code := bf.start(ctx, fs, args, stderr, func() error {
		if *address == "" {
			return usageError{"--address is required (0-250 or 16 hex digits)"}
		}
		var err error
		if key, err = parseKey(*keyHex); err != nil {
			return err
		}
		addr, err = mbus.ParseAddress(strings.TrimSpace(*address))
		return err
	})
	if code >= 0 {
		return code
	}
	defer port.Close()
	res, err := m.ReadWith(ctx, addr, master.ReadOptions{Key: key})
	print := telegramPrinter(bf.format)
	for i, t := range res.Telegrams {
		if perr := print(stdout, i+1, t); perr != nil {
			fmt.Fprintf(stderr, "read: %v\n", perr)
			return 1
		}
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "read: interrupted")
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "read: %v\n", err)
		return 1
	case res.DecodeErr != nil:
		fmt.Fprintf(stderr, "read: %v: records: %v\n", addr, res.DecodeErr)
		return 1
	}
	return 0
}
