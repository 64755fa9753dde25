package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

func TestScanCommand(t *testing.T) {
	scan := mustCommand(t, "scan")
	for _, link := range []string{"tcp", "pty"} {
		t.Run(link, func(t *testing.T) {
			dev := serveBus(t, testBus(t), link)
			out, errOut, code := busCmd(t.Context(), scan, "--device", dev, "--baud", "38400", "--mode", "secondary")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var got []string
			for line := range strings.Lines(out) {
				var f struct {
					Secondary string `json:"secondary"`
					Collision bool   `json:"collision"`
				}
				if err := json.Unmarshal([]byte(line), &f); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				got = append(got, f.Secondary)
			}
			slices.Sort(got)
			want := []string{"068558172D2C0804", "11111111A5110107", "1A2B3C4DA5110107", "22222222A5110107"}
			if !slices.Equal(got, want) {
				t.Errorf("found: got %q, want %q", got, want)
			}
			if !strings.Contains(errOut, "done, 4 found in ") {
				t.Errorf("progress: got %q, want a final count", errOut)
			}
		})
	}
}

// TestScanPrimaryInterrupted: a primary scan stopped by its context
// (SIGINT in real use) prints what it found and exits 1.
func TestScanPrimaryInterrupted(t *testing.T) {
	dev := serveBus(t, testBus(t), "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	w := &cancelAfter{cancel: cancel, marker: "scan: 10/251"}
	var out strings.Builder
	code := mustCommand(t, "scan").run(ctx, []string{"--device", dev, "--baud", "38400", "--format", "text"}, strings.NewReader(""), &out, w)
	if code != 1 || !strings.Contains(w.String(), "interrupted, 3 found so far") {
		t.Fatalf("exit %d, stderr %q", code, w.String())
	}
	for _, want := range []string{"068558172D2C0804", "1A2B3C4DA5110107", "collision: several meters"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
}

// cancelAfter is a stderr that cancels once a marker was written.
type cancelAfter struct {
	strings.Builder
	cancel context.CancelFunc
	marker string
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	n, err := c.Builder.Write(p)
	if strings.Contains(c.String(), c.marker) {
		c.cancel()
	}
	return n, err
}

// TestScanSlowConverter: a TCP bus at 2400 baud whose meters answer
// 190 ms after a request, just after the window of EN 13757-2. The scan
// used to end at once, with no meter, exit 0 and no message.
func TestScanSlowConverter(t *testing.T) {
	bus := sim.NewBus(sim.Options{Baud: 2400, ResponseDelay: 190 * time.Millisecond})
	want := []string{"12345678A5110107", "87654321A5110107"}
	for i, s := range want {
		if err := bus.AddMeter(sim.Meter{Primary: byte(i + 1), Secondary: secondaryAddr(t, s), Telegrams: [][]byte{shortTelegram(t, byte(i+1), false)}}); err != nil {
			t.Fatal(err)
		}
	}
	dev := serveBus(t, bus, "tcp")
	out, errOut, code := busCmd(t.Context(), mustCommand(t, "scan"), "--device", dev, "--baud", "2400", "--mode", "secondary", "--format", "text")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, s := range want {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %s:\n%s", s, out)
		}
	}
	if !strings.Contains(errOut, "done, 2 found in ") {
		t.Errorf("stderr: got %q, want the count of meters and probes", errOut)
	}
}
