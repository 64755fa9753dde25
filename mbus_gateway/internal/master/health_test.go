package master

import (
	"errors"
	"syscall"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// brokenPort fails every write, as an unplugged adapter does.
type brokenPort struct{ *fakePort }

func (brokenPort) Write([]byte) (int, error) { return 0, syscall.EIO }

// TestReadFeedsHealth: each read tells the bus health what it showed: a
// silent meter nothing, garbled answers across meters make the bus
// suspect, a good answer brings it back.
func TestReadFeedsHealth(t *testing.T) {
	good := telegram(t, 7, secA, 1000, false)
	cut := good[:10]
	s := newScript().
		on(sndNKE(9), now(ack)).on(reqUD2(9, true), now(cut), now(cut), now(cut)).
		on(sndNKE(8), now(ack)).on(reqUD2(8, true), now(cut), now(cut), now(cut)).
		on(sndNKE(7), now(ack)).on(reqUD2(7, true), now(good))
	h := bushealth.New(bushealth.Options{SuspectAfter: 2, DownAfter: 5})
	o := fastOpts
	o.Health = h
	m, _ := newMaster(t, s, o)
	steps := []struct {
		addr    byte
		wantErr error
		want    bushealth.State
	}{
		{9, ErrGarbage, bushealth.Up},
		{5, ErrTimeout, bushealth.Up},
		{8, ErrGarbage, bushealth.Suspect},
		{5, ErrTimeout, bushealth.Suspect},
		{7, nil, bushealth.Up},
	}
	for i, st := range steps {
		_, err := m.Read(t.Context(), mbus.Address{Primary: st.addr})
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
			t.Fatalf("step %d, read %d: got %v, want %v", i, st.addr, err, st.wantErr)
		}
		if got := h.State(); got != st.want {
			t.Fatalf("step %d, read %d: bus got %v, want %v", i, st.addr, got, st.want)
		}
	}
}

// TestPortFailureIsTyped: a port that fails is the bus, not the meter:
// the error matches ErrPortDown (and keeps its cause), and the health is
// down.
func TestPortFailureIsTyped(t *testing.T) {
	h := bushealth.New(bushealth.Options{})
	m := New(brokenPort{newFakePort(t, newScript().answer)}, Options{Baud: 38400, Health: h})
	_, err := m.Read(t.Context(), mbus.Address{Primary: 1})
	var pe *PortError
	if !errors.Is(err, ErrPortDown) || !errors.As(err, &pe) || !errors.Is(err, syscall.EIO) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want a PortError matching ErrPortDown and EIO", err)
	}
	if got := h.State(); got != bushealth.Down {
		t.Errorf("bus: got %v, want down", got)
	}
}
