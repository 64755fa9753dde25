package master

import (
	"context"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// SetPrimaryAddress gives the meter at addr the primary address
// newPrimary (SND_UD with CI 0x51 and the record DIF 0x01, VIF 0x7A,
// EN 13757-3 table 14 "bus address"). The meter acknowledges with E5 and
// answers at the new address from then on. Changing an address is a
// deliberate act; nothing in the master calls this on its own. It talks
// at Options.Baud.
func (m *Master) SetPrimaryAddress(ctx context.Context, addr mbus.Address, newPrimary int) error {
	m.at(0)
	if err := m.setPrimaryAddress(ctx, addr, newPrimary); err != nil {
		return fmt.Errorf("set primary address of %v: %w", addr, err)
	}
	return nil
}

func (m *Master) setPrimaryAddress(ctx context.Context, addr mbus.Address, newPrimary int) error {
	if newPrimary < 0 || newPrimary > mbus.AddrMaxPrimary {
		return fmt.Errorf("new address %d: primary addresses go from 0 to %d", newPrimary, mbus.AddrMaxPrimary)
	}
	a := addr.Primary
	if addr.IsSecondary {
		if err := m.selectSecondary(ctx, addr.Secondary, m.opts.Retries); err != nil {
			return err
		}
		defer m.deselect(ctx)
		a = mbus.AddrNetwork
	}
	fcb := m.nextFCB(addr)
	defer func() { m.saveFCB(addr, fcb) }()
	data := []byte{0x01, 0x7A, byte(newPrimary)}
	if err := m.sendUD(ctx, a, &fcb, mbus.CIDataSend, data, "SND_UD"); err != nil {
		return err
	}
	// Whatever we knew about the link at the new address belongs to
	// another (or no) meter.
	delete(m.linked, byte(newPrimary))
	delete(m.fcb, byte(newPrimary))
	if !addr.IsSecondary {
		delete(m.linked, addr.Primary)
	}
	return nil
}
