package e2e

import (
	"bytes"
	binenc "encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// heatBus serves one Kamstrup Multical 601 (libmbus test frame, meter
// kam_06855817) at primary address 1 whose energy register reads kWh.
func heatBus(t *testing.T, kWh uint32) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "mbus", "testdata", "libmbus", "test-frames", "kamstrup_multical_601.hex"))
	if err != nil {
		t.Fatal(err)
	}
	frame, err := mbus.ParseHex(string(b))
	if err != nil {
		t.Fatal(err)
	}
	// DIF 04 VIF 06: the energy in kWh, 32-bit little endian, 37351.
	at := bytes.Index(frame, []byte{0x04, 0x06, 0xE7, 0x91, 0x00, 0x00})
	if at < 0 {
		t.Fatal("energy record not found in the test frame")
	}
	binenc.LittleEndian.PutUint32(frame[at+2:], kWh)
	var sum byte
	for _, c := range frame[4 : len(frame)-2] { // C field up to the checksum (EN 13757-2)
		sum += c
	}
	frame[len(frame)-2] = sum
	bus, err := sim.Setup{Meters: []sim.Meter{{Primary: 1, Telegrams: [][]byte{frame}}}}.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	return serveBus(t, bus)
}

// guardOf decodes a reading message: the guard's decision on the energy
// register (ok is false when there is none) and the register as read.
func guardOf(t *testing.T, m mosquittotest.Message) (g reading.Guarded, ok bool, read float64) {
	t.Helper()
	var r reading.Reading
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("reading: %v", err)
	}
	for _, rec := range r.Records {
		if rec.Key == "energy" {
			read = rec.Value.Num
			break
		}
	}
	g, ok = r.Guard["energy"]
	return g, ok, read
}

// TestGuardAcrossRestart: the meter's energy register drops while the
// gateway is stopped. After the restart the first reading is held back
// (Home Assistant keeps 37351: the guard's state came from the database),
// the next one confirms the drop and it goes out as a meter reset.
func TestGuardAcrossRestart(t *testing.T) {
	broker := mosquittotest.Start(t)
	dir := t.TempDir()
	const energy = "mbus/" + heatMeter + "/energy"
	readings := "mbus/" + heatMeter + "/reading"
	opts := map[string]any{"meters": []map[string]any{{"address": "1"}}, "poll_interval": 1}

	path, _ := gatewayOptions(t, dir, heatBus(t, 37351), broker, opts)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	first := start(t, hermeticEnv(), "run", "--config", path)
	rec.WaitFor(energy, payloadIs("37351"), 20*time.Second)
	stop(t, first)

	path, _ = gatewayOptions(t, dir, heatBus(t, 1000), broker, opts)
	rec.Reset()
	second := start(t, hermeticEnv(), "run", "--config", path)
	// Readings of the first run still queued come first: skip them.
	readsNew := func(after time.Time) func(mosquittotest.Message) bool {
		return func(m mosquittotest.Message) bool { _, _, v := guardOf(t, m); return v == 1000 && m.At.After(after) }
	}
	held := rec.WaitFor(readings, readsNew(time.Time{}), 20*time.Second)
	if g, ok, _ := guardOf(t, held); !ok || g.Reason != reading.GuardDrop || g.Published != 37351 || g.Raw != "1000" {
		t.Errorf("first reading after the restart: guard %+v (%v), want a held drop publishing 37351", g, ok)
	}
	reset := rec.WaitFor(readings, readsNew(held.At), 20*time.Second)
	if g, ok, _ := guardOf(t, reset); !ok || g.Reason != reading.GuardReset || g.Published != 1000 {
		t.Errorf("second reading: guard %+v (%v), want a reset to 1000", g, ok)
	}
	rec.WaitFor(energy, payloadIs("1000"), 20*time.Second)
	// Until the reset the sensor only ever showed the accepted value.
	for _, m := range rec.Messages(energy) {
		if string(m.Payload) == "1000" {
			break
		}
		if string(m.Payload) != "37351" {
			t.Errorf("energy state %q before the reset", m.Payload)
		}
	}
	stop(t, second)
}

// payloadIs matches messages whose payload is want.
func payloadIs(want string) func(mosquittotest.Message) bool {
	return func(m mosquittotest.Message) bool { return string(m.Payload) == want }
}
