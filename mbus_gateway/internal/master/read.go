package master

import (
	"context"
	"errors"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Read reads every telegram of one meter: by primary address, or by
// secondary address (select at 253, read at 253, deselect). It goes on
// while a telegram announces that more records follow, up to
// Options.MaxTelegrams.
//
// A telegram whose frame was valid but whose records did not all decode
// is kept, with what decoded, and the problem goes to Result.DecodeErr;
// only link-level failures and encrypted telegrams (see ReadWith) make
// Read fail. On ErrTooManyTelegrams the
// result holds the telegrams read so far.
func (m *Master) Read(ctx context.Context, addr mbus.Address) (Result, error) {
	return m.ReadAt(ctx, addr, 0)
}

// ReadAt is Read for a meter that talks at baud rather than at
// Options.Baud (0 means Options.Baud). The port is switched to baud
// before the first request and stays there until an operation needs
// another speed, so meters at the same speed read in a row cost no
// switching; every timeout of the read derives from baud. A port whose
// speed is fixed (a TCP converter: transport.ErrBaudFixed) is read at
// Options.Baud, the speed the converter was set to.
func (m *Master) ReadAt(ctx context.Context, addr mbus.Address, baud int) (Result, error) {
	return m.ReadWith(ctx, addr, ReadOptions{Baud: baud})
}

// ReadOptions are what one meter needs of a read beyond its address.
type ReadOptions struct {
	// Baud is the meter's speed, as for ReadAt (0 = Options.Baud).
	Baud int
	// Key is the meter's AES-128 key (16 bytes) when its telegrams are
	// encrypted (EN 13757-7 security mode 5); nil for a plaintext meter.
	Key []byte
}

// ReadWith is Read with the meter's own options. The master decrypts
// each telegram as it arrives: an encrypted telegram hides whether more
// records follow, so the next request depends on it. A telegram that
// cannot be decrypted (no key: mbus.ErrKeyNeeded; the wrong key:
// mbus.ErrDecrypt) fails the read; it is the meter's problem, not the
// bus's: the bus health counts it as answered.
func (m *Master) ReadWith(ctx context.Context, addr mbus.Address, o ReadOptions) (Result, error) {
	m.at(o.Baud)
	res, err := m.read(ctx, addr, o.Key)
	if o, ok := healthOutcome(err); ok {
		m.health.Record(o, err)
	}
	if err != nil {
		if m.baud != m.opts.Baud {
			return res, fmt.Errorf("read %v at %d baud: %w", addr, m.baud, err)
		}
		return res, fmt.Errorf("read %v: %w", addr, err)
	}
	return res, nil
}

// healthOutcome is what a read tells the bus health. Only reads count: a scan
// probes empty and shared addresses, where silence and collisions are
// the expected answers. A valid frame of the wrong kind still proves the
// link works. A cut-off read says nothing.
func healthOutcome(err error) (bushealth.Outcome, bool) {
	switch {
	case err == nil:
		return bushealth.Answered, true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0, false
	case errors.Is(err, ErrPortDown):
		return bushealth.PortFailed, true
	case errors.Is(err, ErrTimeout):
		return bushealth.NoAnswer, true
	case errors.Is(err, ErrGarbage):
		return bushealth.Garbled, true
	}
	return bushealth.Answered, true
}

func (m *Master) read(ctx context.Context, addr mbus.Address, key []byte) (Result, error) {
	var res Result
	a := addr.Primary
	if addr.IsSecondary {
		if err := m.selectSecondary(ctx, addr.Secondary, m.opts.Retries); err != nil {
			return res, err
		}
		defer m.deselect(ctx)
		a = mbus.AddrNetwork
	} else if !m.linked[a] {
		if err := m.reset(ctx, a); err != nil {
			return res, err
		}
	}
	fcb := m.nextFCB(addr)
	defer func() { m.saveFCB(addr, fcb) }()
	if m.opts.AppReset {
		if err := m.appReset(ctx, a, &fcb); err != nil {
			return res, err
		}
	}
	for range m.opts.MaxTelegrams {
		raw, t, derr, err := m.requestData(ctx, a, &fcb, key)
		if err != nil {
			m.unlink(addr)
			return res, err
		}
		if addr.IsSecondary && isLongHeader(t.CI) && t.Header.Address != addr.Secondary {
			m.unlink(addr)
			return res, fmt.Errorf("%w: meter %v answered", ErrUnexpected, t.Header.Address)
		}
		res.Telegrams = append(res.Telegrams, t)
		res.Raw = append(res.Raw, raw)
		if errors.Is(derr, mbus.ErrKeyNeeded) || errors.Is(derr, mbus.ErrDecrypt) {
			// Without its records the telegram says nothing, not even
			// whether another one follows; the next read starts afresh.
			m.unlink(addr)
			return res, fmt.Errorf("REQ_UD2: %w", derr)
		}
		if derr != nil && res.DecodeErr == nil {
			res.DecodeErr = derr
		}
		if !t.MoreRecordsFollow {
			return res, nil
		}
	}
	return res, fmt.Errorf("%w: more records announced after %d", ErrTooManyTelegrams, len(res.Telegrams))
}

// nextFCB returns the FCB for the next request to addr: 1 for a meter
// not talked to yet or just reset, then toggled by each successful
// exchange (saveFCB keeps it between reads).
func (m *Master) nextFCB(addr mbus.Address) bool {
	var (
		v  bool
		ok bool
	)
	if addr.IsSecondary {
		v, ok = m.fcbSec[addr.Secondary]
	} else {
		v, ok = m.fcb[addr.Primary]
	}
	return v || !ok
}

func (m *Master) saveFCB(addr mbus.Address, next bool) {
	if addr.IsSecondary {
		m.fcbSec[addr.Secondary] = next
		return
	}
	m.fcb[addr.Primary] = next
}

// Reset sends SND_NKE to a primary address (EN 13757-2, table 4): the
// slave resets its link layer and answers E5; the next REQ_UD2 carries
// FCB = 1. At address 253 it deselects the selected slave. It talks at
// Options.Baud.
func (m *Master) Reset(ctx context.Context, a byte) error {
	m.at(0)
	return m.reset(ctx, a)
}

func (m *Master) reset(ctx context.Context, a byte) error {
	if _, _, err := m.exchange(ctx, shortFrame(mbus.CSndNKE, a), wantAck, m.opts.Retries); err != nil {
		delete(m.linked, a)
		return fmt.Errorf("SND_NKE: %w", err)
	}
	if a != mbus.AddrNetwork {
		m.linked[a] = true
		m.fcb[a] = true
	}
	return nil
}

// unlink forgets the link state of addr after a failure, so that the next
// read starts with SND_NKE.
func (m *Master) unlink(addr mbus.Address) {
	if !addr.IsSecondary {
		delete(m.linked, addr.Primary)
	}
}

// requestData sends REQ_UD2 with the FCB of *fcb, toggles it after a valid
// answer (EN 13757-2, clause 5.5: a repeated FCB asks for the same frame
// again, a toggled one for the next), and decodes the telegram, decrypted
// with key when it is encrypted.
func (m *Master) requestData(ctx context.Context, a byte, fcb *bool, key []byte) (raw []byte, t *mbus.Telegram, derr, err error) {
	c := byte(mbus.CReqUD2)
	if *fcb {
		c |= mbus.FCB
	}
	f, raw, err := m.exchange(ctx, shortFrame(c, a), wantData, m.opts.Retries)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("REQ_UD2: %w", err)
	}
	*fcb = !*fcb
	t, derr = mbus.DecodeTelegramKey(f, key)
	if t == nil {
		// Only a frame without application layer gives no telegram, and
		// exchange let only long and control frames through.
		return nil, nil, nil, fmt.Errorf("REQ_UD2: %w: %w", ErrUnexpected, derr)
	}
	return raw, t, derr, nil
}

// selectSecondary selects the slave(s) matching pattern (EN 13757-3,
// clause 11.3: SND_UD to 253 with CI 0x52 and the 8-byte address). A
// matching slave answers E5; the others deselect themselves.
func (m *Master) selectSecondary(ctx context.Context, pattern mbus.SecondaryAddress, retries int) error {
	req, err := longFrame(mbus.CSndUD, mbus.AddrNetwork, mbus.CISelect, pattern[:])
	if err != nil {
		return fmt.Errorf("select %v: %w", pattern, err)
	}
	if _, _, err := m.exchange(ctx, req, wantAck, retries); err != nil {
		return fmt.Errorf("select %v: %w", pattern, err)
	}
	return nil
}

// deselect ends a secondary-address session with SND_NKE to 253. It is
// best effort: a meter that misses it is deselected by the next select
// anyway, so its errors are not reported.
func (m *Master) deselect(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	_, _, _ = m.exchange(ctx, shortFrame(mbus.CSndNKE, mbus.AddrNetwork), wantAck, 0)
}

// appReset sends an application reset (SND_UD, CI 0x50, no data).
func (m *Master) appReset(ctx context.Context, a byte, fcb *bool) error {
	return m.sendUD(ctx, a, fcb, mbus.CIAppReset, nil, "application reset")
}

// sendUD sends SND_UD with the FCB of *fcb and expects E5.
func (m *Master) sendUD(ctx context.Context, a byte, fcb *bool, ci byte, data []byte, op string) error {
	c := byte(mbus.CSndUD)
	if *fcb {
		c |= mbus.FCB
	}
	req, err := longFrame(c, a, ci, data)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, _, err := m.exchange(ctx, req, wantAck, m.opts.Retries); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	*fcb = !*fcb
	return nil
}

func isLongHeader(ci byte) bool {
	return ci == mbus.CIRespVarLong || ci == mbus.CIRespVarLong2
}
