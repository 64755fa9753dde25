package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
)

// busCmd runs a bus command (cmdRead, cmdScan) with ctx.
func busCmd(ctx context.Context, cmd command, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = cmd.run(ctx, args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// testBus is a simulated bus with a real meter at primary 1, a meter of
// three telegrams at 2 and secondary 1A2B3C4DA5110107, and two meters
// sharing primary 3.
func testBus(t *testing.T) *sim.Bus {
	t.Helper()
	kam, err := mbus.ParseHex(string(readFile(t, kamstrupHex)))
	if err != nil {
		t.Fatal(err)
	}
	bus := sim.NewBus(sim.Options{})
	meters := []sim.Meter{
		{Primary: 1, Telegrams: [][]byte{kam}},
		{Primary: 2, Secondary: secondaryAddr(t, "1A2B3C4DA5110107"), Telegrams: [][]byte{
			shortTelegram(t, 1, true), shortTelegram(t, 2, true), shortTelegram(t, 3, false)}},
		{Primary: 3, Secondary: secondaryAddr(t, "11111111A5110107"), Telegrams: [][]byte{kam}},
		{Primary: 3, Secondary: secondaryAddr(t, "22222222A5110107"), Telegrams: [][]byte{kam}},
	}
	for _, m := range meters {
		if err := bus.AddMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	return bus
}

func secondaryAddr(t *testing.T, s string) mbus.SecondaryAddress {
	t.Helper()
	a, err := mbus.ParseSecondaryAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// shortTelegram is an RSP_UD with a long header (the simulator fills in
// the address) and one energy record of kWh; more sets DIF 1F.
func shortTelegram(t *testing.T, kWh byte, more bool) []byte {
	t.Helper()
	data := make([]byte, 12, 20)
	data[8] = 1 // access number
	data = append(data, 0x04, 0x06, kWh, 0, 0, 0)
	if more {
		data = append(data, 0x1F)
	}
	b, err := mbus.Frame{Type: mbus.FrameLong, C: mbus.CRspUD, CI: mbus.CIRespVarLong, Data: data}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveBus serves bus over TCP or a pseudo-terminal until the test ends.
func serveBus(t *testing.T, bus *sim.Bus, link string) string {
	t.Helper()
	if link != "pty" {
		return "tcp://" + simtest.ServeTCP(t, bus)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := bus.OpenPTY(ctx, "")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Close() })
	return p.Path()
}

func TestReadCommand(t *testing.T) {
	read := mustCommand(t, "read")
	for _, link := range []string{"tcp", "pty"} {
		t.Run(link, func(t *testing.T) {
			dev := serveBus(t, testBus(t), link)
			ctx := t.Context()

			out, errOut, code := busCmd(ctx, read, "--device", dev, "--baud", "38400", "--address", "1")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var tg struct {
				Header            mbus.Header       `json:"header"`
				Records           []json.RawMessage `json:"records"`
				MoreRecordsFollow *bool             `json:"more_records_follow"`
			}
			if err := json.Unmarshal([]byte(out), &tg); err != nil {
				t.Fatalf("stdout is not one JSON telegram: %v\n%s", err, out)
			}
			if tg.Header.ID != "06855817" || len(tg.Records) == 0 || tg.MoreRecordsFollow == nil {
				t.Errorf("telegram: got %s", out)
			}

			// Three telegrams by secondary address (hex digits in the ID):
			// three JSON lines.
			out, errOut, code = busCmd(ctx, read, "--device", dev, "--baud", "38400", "--address", "1A2B3C4DA5110107")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if got, want := len(lines), 3; got != want {
				t.Fatalf("telegrams: got %d lines, want %d:\n%s", got, want, out)
			}
			for i, want := range []string{`"value":1`, `"value":2`, `"value":3`} {
				if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"id":"1A2B3C4D"`) {
					t.Errorf("telegram %d: got %s, want %s and the ID", i+1, lines[i], want)
				}
			}

			// Text output.
			out, errOut, code = busCmd(ctx, read, "--device", dev, "--baud", "38400", "--address", "2", "--format", "text")
			if code != 0 || !strings.Contains(out, "telegram 3:") || !strings.Contains(out, "more records follow") {
				t.Errorf("text: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
			}

			// Two meters at one primary address.
			_, errOut, code = busCmd(ctx, read, "--device", dev, "--baud", "38400", "--address", "3")
			if code != 1 || !strings.Contains(errOut, "garbled") {
				t.Errorf("shared address: exit %d, stderr %q; want 1 and a garbled answer", code, errOut)
			}
			// Nobody at 77: a timeout bounded by the baud rate.
			_, errOut, code = busCmd(ctx, read, "--device", dev, "--baud", "38400", "--address", "77")
			if code != 1 || !strings.Contains(errOut, "no answer") {
				t.Errorf("absent meter: exit %d, stderr %q; want 1 and no answer", code, errOut)
			}
		})
	}
}

// TestReadCommandKey: a meter whose three telegrams are encrypted
// (security mode 5) is read whole with --key; without it the read ends
// at the first telegram, which is printed with its header only, and
// says that a key is needed.
func TestReadCommandKey(t *testing.T) {
	const key = "000102030405060708090A0B0C0D0E0F"
	k, err := mbus.ParseHex(key)
	if err != nil {
		t.Fatal(err)
	}
	bus := sim.NewBus(sim.Options{})
	if err := bus.AddMeter(sim.Meter{Primary: 4, Secondary: secondaryAddr(t, "44444444A5110107"), Key: k, Telegrams: [][]byte{
		shortTelegram(t, 1, true), shortTelegram(t, 2, true), shortTelegram(t, 3, false)}}); err != nil {
		t.Fatal(err)
	}
	dev := serveBus(t, bus, "tcp")
	read := mustCommand(t, "read")

	out, errOut, code := busCmd(t.Context(), read, "--device", dev, "--baud", "38400", "--address", "4", "--key", key)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("with the key: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	for i, want := range []string{`"value":1`, `"value":2`, `"value":3`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"security_mode":5`) {
			t.Errorf("telegram %d: got %s, want %s in security mode 5", i+1, lines[i], want)
		}
	}

	out, errOut, code = busCmd(t.Context(), read, "--device", dev, "--baud", "38400", "--address", "4")
	if code != 1 || !strings.Contains(errOut, "encrypted, key needed") || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"records":[]`) {
		t.Errorf("without the key: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
}

// TestBusCommandErrors: bad input of every kind is one clear line and a
// non-zero exit, without touching a bus.
func TestBusCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "tcp://" + ln.Addr().String()
	ln.Close()
	missing := t.TempDir() + "/ttyUSB7"
	tests := []struct {
		cmd  string
		args []string
		code int
		want string
	}{
		{"read", []string{"--address", "1"}, 2, "--device is required"},
		{"read", []string{"--device", "/dev/ttyUSB0"}, 2, "--address is required"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "251"}, 1, "0 to 250"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "12345678FFFFFFFF"}, 1, "wildcards"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "xyz"}, 1, "want a primary address"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "1", "--baud", "115200"}, 1, "baud rate 115200"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "1", "--format", "xml"}, 2, "want json or text"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "1", "extra"}, 2, "unexpected argument"},
		{"read", []string{"--device", missing, "--address", "1"}, 1, "no such file"},
		{"read", []string{"--device", refused, "--address", "1"}, 1, "refused"},
		{"read", []string{"--device", "tcp://nohostport", "--address", "1"}, 1, "want tcp://host:port"},
		{"read", []string{"--device", "/dev/null", "--address", "1"}, 1, "/dev/null"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "1", "--parity", "mark"}, 1, "parity"},
		{"read", []string{"--nope"}, 2, "flag provided but not defined"},
		{"read", []string{"--device", "/dev/ttyUSB0", "--address", "1", "--key", "00112233"}, 1, "--key: want 32 hex digits"},
		{"scan", []string{}, 2, "--device is required"},
		{"scan", []string{"--device", refused}, 1, "refused"},
		{"scan", []string{"--device", "/dev/ttyUSB0", "--mode", "tertiary"}, 2, "want primary or secondary"},
		{"scan", []string{"--device", "/dev/ttyUSB0", "--baud", "1000"}, 1, "baud rate 1000"},
	}
	for _, tt := range tests {
		_, errOut, code := busCmd(t.Context(), mustCommand(t, tt.cmd), tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s %q: got exit %d, stderr %q; want exit %d and %q", tt.cmd, tt.args, code, errOut, tt.code, tt.want)
		}
		if tt.code == 1 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s %q: error spans several lines: %q", tt.cmd, tt.args, errOut)
		}
	}
}

// mustCommand is the command called name.
func mustCommand(t *testing.T, name string) command {
	t.Helper()
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		t.Fatalf("no command %q", name)
	}
	return commands[i]
}
