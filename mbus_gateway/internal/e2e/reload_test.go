package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestRunReload: SIGHUP re-reads the options file, applies a new meter and
// the log level at once, and names what needs a restart.
func TestRunReload(t *testing.T) {
	broker := mosquittotest.Start(t)
	bus := startBus(t)
	dir := t.TempDir()
	one := map[string]any{"meters": []map[string]any{{"address": "1"}}}
	path, metrics := gatewayOptions(t, dir, bus, broker, one)
	p := start(t, hermeticEnv(), "run", "--config", path)
	var st status
	eventually(t, 15*time.Second, "/status shows meter 1 read", func() bool {
		return getJSON(t, endpoint(metrics, "/status"), &st) == http.StatusOK && st.read() == 1
	})

	// Same ports and data, one more meter, another level and interval.
	text, metricsNow := readOptions(t, path), metrics
	text["meters"] = []map[string]any{{"address": "1"}, {"address": "2", "name": "Water"}}
	text["log_level"] = "debug"
	text["poll_interval"] = 7
	writeOptions(t, dir, text)
	p.signal(syscall.SIGHUP)

	eventually(t, 15*time.Second, "/status shows the added meter read", func() bool {
		return getJSON(t, endpoint(metricsNow, "/status"), &st) == http.StatusOK && st.read() == 2
	})
	eventually(t, 5*time.Second, "the reload is logged", func() bool {
		return strings.Contains(p.stderr.String(), "options reloaded")
	})
	log := p.stderr.String()
	want := []string{
		`need_restart=["poll_interval","meters[0] (1)"]`, // meter 1 inherits the interval
		"log_level", "meters: 1 added", "DBG",
	}
	for _, want := range want {
		if !strings.Contains(log, want) {
			t.Errorf("log after SIGHUP: no %q in\n%s", want, log)
		}
	}
	stop(t, p)
}
