package transport

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	serial "github.com/albenik/go-serial/v2"
)

// openSerial opens a local serial device, typically a USB M-Bus level
// converter.
//
// The device is opened twice. go-serial sets the line up (speed, 8 data
// bits, parity, stop bits, raw mode, exclusive access) and keeps that
// handle until Close. The bytes go through a second, non-blocking handle
// on the same terminal, served by Go's poller: its reads honour deadlines
// that another goroutine may move (how a cancelled read ends at once),
// and new input wakes them reliably; go-serial's select-based reads were
// seen to sleep through answers on pseudo-terminals. The data handle is
// opened first because go-serial's exclusive mode refuses later opens.
func openSerial(name string, o Options) (*pollPort, error) {
	parity := map[Parity]serial.Parity{
		ParityEven: serial.EvenParity,
		ParityNone: serial.NoParity,
		ParityOdd:  serial.OddParity,
	}[o.Parity]
	stop := serial.OneStopBit
	if o.StopBits == 2 {
		stop = serial.TwoStopBits
	}
	f, err := os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err // an *os.PathError: "open <name>: <cause>"
	}
	cfg, err := serial.Open(name,
		serial.WithBaudrate(o.Baud),
		serial.WithDataBits(8),
		serial.WithParity(parity),
		serial.WithStopBits(stop),
		serial.WithHUPCL(false),
	)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	p, err := newPollPort(name, f, func() error {
		ferr := f.Close()
		cerr := cfg.Close()
		if errors.Is(ferr, os.ErrClosed) {
			return ErrClosed
		}
		if err := errors.Join(ferr, cerr); err != nil {
			return fmt.Errorf("%s: close: %w", name, err)
		}
		return nil
	})
	if err != nil {
		_ = f.Close()
		_ = cfg.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	// Reconfigure keeps the parity, stop bits and raw mode set above.
	p.setBaud = func(baud int) error { return cfg.Reconfigure(serial.WithBaudrate(baud)) }
	return p, nil
}
