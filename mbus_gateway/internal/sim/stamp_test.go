package sim

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// readout is what a telegram tells about its transmission.
type readout struct {
	access byte
	energy float64
}

func (r readout) String() string { return fmt.Sprintf("access %d energy %v", r.access, r.energy) }

// readOut decodes a telegram's access number and its energy register.
func readOut(t *testing.T, raw []byte) readout {
	t.Helper()
	tg, err := mbus.ParseTelegram(raw)
	if err != nil {
		t.Fatalf("telegram %X: %v", raw, err)
	}
	r := readout{access: tg.Header.AccessNumber}
	for _, rec := range tg.Records {
		if rec.Key == "energy" {
			r.energy = rec.Value.Num
		}
	}
	return r
}

// TestAccessNumberCounts: every new transmission carries the next access
// number (and with Advance the next energy value); a retry for the same
// FCB is the same telegram again; a reset does not restart the count;
// FixedAccessNumber sends the telegram as given.
func TestAccessNumberCounts(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex") // access number 4, 37351 kWh
	type ask struct {
		name string
		req  func(t testing.TB) []byte
	}
	req := func(fcb bool) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return reqUD2(t, 7, fcb) }
	}
	seq := []ask{
		{"first", req(true)},
		{"toggled", req(false)},
		{"same FCB: retry", req(false)},
		{"toggled", req(true)},
		{"after SND_NKE", nil},
	}
	tests := []struct {
		name string
		opts Options
		want []readout
	}{
		{"default", Options{}, []readout{{4, 37351}, {5, 37351}, {5, 37351}, {6, 37351}, {7, 37351}}},
		{"advance", Options{Advance: true}, []readout{{4, 37351}, {5, 37352}, {5, 37352}, {6, 37353}, {7, 37354}}},
		{"fixed", Options{FixedAccessNumber: true}, []readout{{4, 37351}, {4, 37351}, {4, 37351}, {4, 37351}, {4, 37351}}},
		{"fixed, advance", Options{FixedAccessNumber: true, Advance: true}, []readout{{4, 37351}, {4, 37352}, {4, 37352}, {4, 37353}, {4, 37354}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := newBus(t, tt.opts, Meter{Primary: 7, Telegrams: [][]byte{kam}})
			m := serveTCP(t, bus)
			var prev []byte
			for i, a := range seq {
				if a.req == nil {
					if got := m.ask(sndNKE(t, 7)); !bytes.Equal(got, ack) {
						t.Fatalf("SND_NKE: got %X, want E5", got)
					}
					a.req = req(true)
				}
				raw := m.ask(a.req(t))
				if got := readOut(t, raw); got != tt.want[i] {
					t.Errorf("%d %s: got %v, want %v", i, a.name, got, tt.want[i])
				}
				if a.name == "same FCB: retry" && !bytes.Equal(raw, prev) {
					t.Errorf("retry: got %X, want the previous telegram %X", raw, prev)
				}
				prev = raw
			}
			st := bus.Meters()[0]
			if got, want := st.AccessNumber, tt.want[len(tt.want)-1].access; got != want {
				t.Errorf("MeterStatus.AccessNumber: got %d, want %d", got, want)
			}
			if got, want := st.TelegramsSent, uint64(len(seq)); got != want {
				t.Errorf("TelegramsSent: got %d, want %d", got, want)
			}
		})
	}
}

// TestAccessNumberWraps: the access number is one byte and wraps.
func TestAccessNumberWraps(t *testing.T) {
	out := withAddress(frameFile(t, "kamstrup_multical_601.hex"), 1)
	stamp(out, 253, false, false) // 4 + 253 = 257 → 1
	if got := out[dataOff+accessOffLong]; got != 1 {
		t.Errorf("access number: got %d, want 1", got)
	}
}

func TestAddRegister(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		n        uint64
		bcd, msb bool
		want     []byte
	}{
		{"binary", []byte{0xE7, 0x91, 0, 0}, 1, false, false, []byte{0xE8, 0x91, 0, 0}},
		{"binary carry", []byte{0xFF, 0xFF, 0, 0}, 1, false, false, []byte{0, 0, 1, 0}},
		{"binary add more than a byte", []byte{0xFF, 0, 0, 0}, 0x102, false, false, []byte{0x01, 0x02, 0, 0}},
		{"binary wraps", []byte{0xFF, 0xFF}, 1, false, false, []byte{0, 0}},
		{"binary msb first", []byte{0, 0, 0x01, 0xFF}, 1, false, true, []byte{0, 0, 0x02, 0}},
		{"bcd", []byte{0x98, 0x76}, 1, true, false, []byte{0x99, 0x76}},
		{"bcd carry", []byte{0x99, 0x09}, 1, true, false, []byte{0x00, 0x10}},
		{"bcd add 250", []byte{0x50, 0x00}, 250, true, false, []byte{0x00, 0x03}},
		{"bcd wraps", []byte{0x99, 0x99}, 1, true, false, []byte{0, 0}},
		{"not bcd: untouched", []byte{0x9F, 0x00}, 1, true, false, []byte{0x9F, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := append([]byte(nil), tt.in...)
			addRegister(got, tt.n, tt.bcd, tt.msb)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % X, want % X", got, tt.want)
			}
		})
	}
}

func TestFirstCounter(t *testing.T) {
	tests := []struct {
		name    string
		records []byte
		pos     int
		size    int
		bcd, ok bool
	}{
		{"fabrication number, then energy", []byte{0x0C, 0x78, 1, 2, 3, 4, 0x04, 0x06, 0xE7, 0x91, 0, 0}, 8, 4, false, true},
		{"filler, BCD volume", []byte{0x2F, 0x0C, 0x13, 0x11, 0x22, 0x33, 0x44}, 3, 4, true, true},
		{"stored value skipped", []byte{0x44, 0x06, 1, 0, 0, 0, 0x04, 0x06, 2, 0, 0, 0}, 8, 4, false, true},
		{"DIFE with tariff skipped", []byte{0x84, 0x10, 0x06, 1, 0, 0, 0, 0x02, 0x13, 5, 0}, 9, 2, false, true},
		{"VIFE skipped", []byte{0x04, 0x86, 0x3C, 1, 0, 0, 0, 0x01, 0x16, 9}, 9, 1, false, true},
		{"plain text VIF skipped", []byte{0x04, 0x7C, 0x02, 'a', 'b', 1, 0, 0, 0, 0x01, 0x00, 7}, 11, 1, false, true},
		{"variable length skipped", []byte{0x0D, 0xFD, 0x11, 0x02, 'x', 'y', 0x01, 0x03, 7}, 8, 1, false, true},
		{"real is no counter", []byte{0x05, 0x06, 0, 0, 0, 0}, 0, 0, false, false},
		{"temperature is no counter", []byte{0x02, 0x59, 0x10, 0x00}, 0, 0, false, false},
		{"manufacturer data ends", []byte{0x0F, 0x04, 0x06, 1, 0, 0, 0}, 0, 0, false, false},
		{"truncated DIFE", []byte{0x84}, 0, 0, false, false},
		{"truncated value", []byte{0x04, 0x06, 1, 2}, 0, 0, false, false},
		{"truncated text VIF", []byte{0x04, 0x7C}, 0, 0, false, false},
		{"empty", nil, 0, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pos, size, bcd, ok := firstCounter(tt.records)
			if pos != tt.pos || size != tt.size || bcd != tt.bcd || ok != tt.ok {
				t.Errorf("got pos %d size %d bcd %v ok %v, want %d %d %v %v", pos, size, bcd, ok, tt.pos, tt.size, tt.bcd, tt.ok)
			}
		})
	}
}

// FuzzStamp: stamping never panics and never changes the frame's length
// or anything before the user data.
func FuzzStamp(f *testing.F) {
	f.Add(frameFile(f, "kamstrup_multical_601.hex"), uint64(3))
	f.Add([]byte{0x68, 0x04, 0x04, 0x68, 0x08, 0x01, 0x7A, 0x04, 0x00, 0x16}, uint64(1))
	f.Fuzz(func(t *testing.T, frame []byte, n uint64) {
		out := append([]byte(nil), frame...)
		stamp(out, n, false, true)
		if len(out) != len(frame) || (len(out) >= dataOff && !bytes.Equal(out[:dataOff], frame[:dataOff])) {
			t.Errorf("stamp changed the frame outside its user data: % X → % X", frame, out)
		}
	})
}
