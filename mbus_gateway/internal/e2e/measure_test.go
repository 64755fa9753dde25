//go:build measure

package e2e

// Resource measurements of the built gateway, documented in
// docs/performance.md. They take minutes and depend on the machine, so they
// only build with the tag:
//
//	go test -tags measure -run 'TestMeasure' -v -timeout 30m ./mbus_gateway/internal/e2e

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

var cpuWindow = flag.Duration("measure.cpu-window", 3*time.Minute, "how long TestMeasureCPU samples")

// startManyMeters serves n meters without pacing: the telegrams of the
// demo bus in turn, each meter with its own secondary address (ID
// 9000xxxx), so that all have their own topics.
func startManyMeters(t *testing.T, n int) string {
	t.Helper()
	setup, err := demo.Setup()
	if err != nil {
		t.Fatal(err)
	}
	model, err := setup.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	kinds := model.Meters()
	bus := sim.NewBus(sim.Options{})
	for i := range n {
		k := i % len(kinds)
		sec, err := mbus.ParseSecondaryAddress(fmt.Sprintf("%08d%s", 90000000+i, kinds[k].Secondary.String()[8:]))
		if err != nil {
			t.Fatal(err)
		}
		m := setup.Meters[k]
		m.Primary, m.Secondary, m.Name = byte(i+1), sec, fmt.Sprintf("meter %d", i+1)
		if err := bus.AddMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	return serveBus(t, bus)
}

// production builds the gateway as the add-on image does, with
// packaging/build.sh, once; MBUS_MEASURE_BINARY, when set, names a build
// to measure instead.
var production = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("MBUS_MEASURE_BINARY"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(filepath.Dir(binary), "mbus-gateway-production")
	build := exec.Command("sh", "../../../packaging/build.sh", "measure", bin)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("packaging/build.sh: %w\n%s", err, out)
	}
	return bin, nil
})

// startMeasured runs the gateway, built as for the add-on image, on n
// meters read every interval.
func startMeasured(t *testing.T, n, interval int) (*process, int) {
	t.Helper()
	broker := mosquittotest.Start(t)
	meters := make([]map[string]any, n)
	for i := range meters {
		meters[i] = map[string]any{"address": strconv.Itoa(i + 1)}
	}
	dir := t.TempDir()
	path, metrics := gatewayOptions(t, dir, startManyMeters(t, n), broker, map[string]any{
		"meters": meters, "poll_interval": interval,
	})
	bin, err := production()
	if err != nil {
		t.Fatal(err)
	}
	return startBinary(t, bin, hermeticEnv(), "run", "--config", path), metrics
}

// polls is the bus's poll counter from /status.
func polls(t *testing.T, port int) uint64 {
	var st struct {
		Bus struct{ Polls uint64 } `json:"bus"`
	}
	if getJSON(t, endpoint(port, "/status"), &st) != http.StatusOK {
		return 0
	}
	return st.Bus.Polls
}

// cpuTicks is user + system time of pid in clock ticks (/proc/PID/stat
// fields 14 and 15).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; count after its ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return utime + stime
}

// TestMeasureMemory: resident memory with 50 meters after 1,000 polls
// (goal: at most 25 MB), and its growth over 10,000 more (goal: none
// beyond noise).
func TestMeasureMemory(t *testing.T) {
	p, port := startMeasured(t, 50, 1)
	pid := p.cmd.Process.Pid
	waitPolls := func(n uint64) {
		eventually(t, 30*time.Minute, fmt.Sprintf("%d polls", n), func() bool { return polls(t, port) >= n })
	}
	waitPolls(1000)
	rss1k := procField(t, pid, "VmRSS")
	t.Logf("after 1,000 polls: anonymous %d kB, file-backed (the binary's pages) %d kB",
		procField(t, pid, "RssAnon"), procField(t, pid, "RssFile"))
	waitPolls(11000)
	rss11k, hwm := procField(t, pid, "VmRSS"), procField(t, pid, "VmHWM")
	stop(t, p)
	t.Logf("50 meters: VmRSS after 1,000 polls %.1f MB, after 11,000 polls %.1f MB (peak %.1f MB)",
		float64(rss1k)/1024, float64(rss11k)/1024, float64(hwm)/1024)
	if rss1k > 25*1024 {
		t.Errorf("VmRSS after 1,000 polls: got %d kB, goal at most 25 MB", rss1k)
	}
	if growth := rss11k - rss1k; growth > 2*1024 {
		t.Errorf("VmRSS grew by %d kB over 10,000 polls: want no growth beyond 2 MB of noise", growth)
	}
}

// TestMeasureCPU: CPU time at the default 15 s interval with 10 meters
// (goal: under 1 % of one core), sampled after the first minute.
func TestMeasureCPU(t *testing.T) {
	p, port := startMeasured(t, 10, 15)
	pid := p.cmd.Process.Pid
	eventually(t, time.Minute, "every meter read once", func() bool { return polls(t, port) >= 10 })
	ticks0, t0, polls0 := cpuTicks(t, pid), time.Now(), polls(t, port)
	<-time.After(*cpuWindow) // sampling a window of wall time is the measurement itself
	ticks1, t1, polls1 := cpuTicks(t, pid), time.Now(), polls(t, port)
	stop(t, p)
	const hz = 100 // USER_HZ on Linux
	share := float64(ticks1-ticks0) / hz / t1.Sub(t0).Seconds()
	t.Logf("10 meters every 15 s: %.3f %% of one core over %v (%d polls)", 100*share, t1.Sub(t0).Round(time.Second), polls1-polls0)
	if share >= 0.01 {
		t.Errorf("CPU: got %.2f %% of one core, goal under 1 %%", 100*share)
	}
}
