package daemon

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
)

// optionChanges changes each option of config.Keys() in an options file
// (as a JSON object) to another valid value. A new option needs an entry
// here, and then a place in liveOptions or restartOptions.
var optionChanges = map[string]func(m map[string]any){
	"serial_port": func(m map[string]any) {
		delete(m, "tcp_address")
		m["serial_port"] = "/dev/ttyUSB9"
	},
	"tcp_address":   func(m map[string]any) { m["tcp_address"] = "127.0.0.1:2" },
	"baudrate":      func(m map[string]any) { m["baudrate"] = 2400 },
	"poll_interval": func(m map[string]any) { m["poll_interval"] = 30 },
	"scan_on_start": func(m map[string]any) { m["scan_on_start"] = false },
	"scan_mode":     func(m map[string]any) { m["scan_mode"] = "primary" },
	"mqtt.host":     func(m map[string]any) { mqttOption(m, "host", "192.0.2.1") },
	"mqtt.port":     func(m map[string]any) { mqttOption(m, "port", 1884) },
	"mqtt.username": func(m map[string]any) { mqttOption(m, "username", "gateway") },
	"mqtt.password": func(m map[string]any) {
		mqttOption(m, "username", "gateway")
		mqttOption(m, "password", "secret")
	},
	"mqtt.tls":               func(m map[string]any) { mqttOption(m, "tls", true) },
	"topic_prefix":           func(m map[string]any) { m["topic_prefix"] = "meters" },
	"discovery_prefix":       func(m map[string]any) { m["discovery_prefix"] = "ha" },
	"expire_after":           func(m map[string]any) { m["expire_after"] = 600 },
	"outbox_max_rows":        func(m map[string]any) { m["outbox_max_rows"] = 500 },
	"outbox_max_age":         func(m map[string]any) { m["outbox_max_age"] = 3600 },
	"response_timeout_extra": func(m map[string]any) { m["response_timeout_extra"] = 100 },
	"log_level":              func(m map[string]any) { m["log_level"] = "debug" },
	"log_format":             func(m map[string]any) { m["log_format"] = "json" },
	"web_port":               func(m map[string]any) { m["web_port"] = 8100 },
	"web_allow":              func(m map[string]any) { m["web_allow"] = []string{"10.0.0.0/8"} },
	"metrics_port":           func(m map[string]any) { m["metrics_port"] = 9106 },
	"metrics_bind":           func(m map[string]any) { m["metrics_bind"] = "0.0.0.0" },
	"data_dir":               func(m map[string]any) { m["data_dir"] = "/elsewhere" },
	"meters.address":         func(m map[string]any) { firstMeter(m)["address"] = "3" },
	"meters.name":            func(m map[string]any) { firstMeter(m)["name"] = "Other" },
	"meters.poll_interval":   func(m map[string]any) { firstMeter(m)["poll_interval"] = 30 },
	"meters.baudrate":        func(m map[string]any) { firstMeter(m)["baudrate"] = 2400 },
	"meters.enabled":         func(m map[string]any) { firstMeter(m)["enabled"] = false },
	"meters.key":             func(m map[string]any) { firstMeter(m)["key"] = "00112233445566778899aabbccddeeff" },
	"meters.guard":           func(m map[string]any) { firstMeter(m)["guard"] = false },
	"mqtt.ca_file": func(m map[string]any) {
		mqttOption(m, "tls", true)
		mqttOption(m, "ca_file", "/config/ca.pem")
	},
	"mqtt.cert_file": func(m map[string]any) {
		mqttOption(m, "tls", true)
		mqttOption(m, "cert_file", "/config/client.pem")
		mqttOption(m, "key_file", "/config/client.key")
	},
	"mqtt.key_file": func(m map[string]any) {
		mqttOption(m, "tls", true)
		mqttOption(m, "cert_file", "/config/client.pem")
		mqttOption(m, "key_file", "/config/client.key")
	},
	"buses.name": func(m map[string]any) { firstBus(m)["name"] = "cellar" },
	"buses.serial_port": func(m map[string]any) {
		delete(firstBus(m), "tcp_address")
		firstBus(m)["serial_port"] = "/dev/ttyUSB9"
	},
	"buses.tcp_address":          func(m map[string]any) { firstBus(m)["tcp_address"] = "127.0.0.1:2" },
	"buses.baudrate":             func(m map[string]any) { firstBus(m)["baudrate"] = 2400 },
	"buses.scan_on_start":        func(m map[string]any) { firstBus(m)["scan_on_start"] = false },
	"buses.scan_mode":            func(m map[string]any) { firstBus(m)["scan_mode"] = "primary" },
	"buses.meters.address":       func(m map[string]any) { firstBusMeter(m)["address"] = "3" },
	"buses.meters.name":          func(m map[string]any) { firstBusMeter(m)["name"] = "Other" },
	"buses.meters.poll_interval": func(m map[string]any) { firstBusMeter(m)["poll_interval"] = 30 },
	"buses.meters.baudrate":      func(m map[string]any) { firstBusMeter(m)["baudrate"] = 2400 },
	"buses.meters.enabled":       func(m map[string]any) { firstBusMeter(m)["enabled"] = false },
	"buses.meters.key":           func(m map[string]any) { firstBusMeter(m)["key"] = "00112233445566778899aabbccddeeff" },
	"buses.meters.guard":         func(m map[string]any) { firstBusMeter(m)["guard"] = false },
}

func mqttOption(m map[string]any, key string, v any) { m["mqtt"].(map[string]any)[key] = v }

func firstMeter(m map[string]any) map[string]any { return m["meters"].([]any)[0].(map[string]any) }

// firstBus turns the single-bus options of m into the buses: form, if they
// are not yet, and returns the first bus.
func firstBus(m map[string]any) map[string]any {
	if _, ok := m["buses"]; !ok {
		m["buses"] = []any{map[string]any{"name": "bus", "tcp_address": m["tcp_address"], "meters": m["meters"]}}
		delete(m, "tcp_address")
		delete(m, "meters")
	}
	return m["buses"].([]any)[0].(map[string]any)
}

func firstBusMeter(m map[string]any) map[string]any {
	return firstBus(m)["meters"].([]any)[0].(map[string]any)
}

// listed finds the entries of liveOptions and of restartOptions that
// stand for key: the key itself, or the object or list it is part of.
func listed(key string) (live, restart []string) {
	covers := func(entry string) bool { return key == entry || strings.HasPrefix(key, entry+".") }
	for _, e := range liveOptions {
		if covers(e) {
			live = append(live, e)
		}
	}
	for _, f := range restartOptions {
		if covers(f.key) {
			restart = append(restart, f.key)
		}
	}
	return live, restart
}

// TestReloadKnowsEveryOption: each option of the schema is either put
// into effect by a reload or reported as needing a restart, never both.
func TestReloadKnowsEveryOption(t *testing.T) {
	for _, key := range config.Keys() {
		live, restart := listed(key)
		switch {
		case len(live)+len(restart) > 1:
			t.Errorf("option %s: listed more than once: live %q, restart %q", key, live, restart)
		case len(live)+len(restart) == 0:
			t.Errorf("option %s: neither in liveOptions nor in restartOptions: decide whether a reload applies it", key)
		}
	}
}

// inherited are the options that meters without their own value inherit:
// changing one changes the meters too.
var inherited = map[string]bool{"baudrate": true, "poll_interval": true}

// TestApplyReportsEveryChange changes one option at a time and applies
// it to a built gateway: the change is reported, as applied when the
// option is live and as needing a restart when not, and nothing else is.
func TestApplyReportsEveryChange(t *testing.T) {
	dir := t.TempDir()
	base := optionsMap(t, optionsJSON(t, "127.0.0.1:1", "127.0.0.1:1", dir, nil))
	d, p := builtParts(t, parseOptions(t, base))

	for _, key := range config.Keys() {
		change, ok := optionChanges[key]
		if !ok {
			t.Errorf("option %s: no change in optionChanges", key)
			continue
		}
		m := optionsMap(t, optionsJSON(t, "127.0.0.1:1", "127.0.0.1:1", dir, nil))
		change(m)
		applied, restart := d.apply(t.Context(), p, parseOptions(t, m))
		live, _ := listed(key)
		// A live option is reported by its first level ("meters: 1
		// changed"), one that needs a restart by its entry.
		want, other, where, name := restart, applied, "need a restart", ""
		if len(live) > 0 {
			want, other, where = applied, restart, "applied"
			name, _, _ = strings.Cut(key, ".")
		} else if _, r := listed(key); len(r) > 0 {
			name = r[0]
		}
		if !slices.ContainsFunc(want, func(s string) bool { return s == name || strings.HasPrefix(s, name+":") }) {
			t.Errorf("option %s changed: reported %q as %s, want %s among them", key, want, where, name)
		}
		// Going from the single-bus options to buses: changes both.
		formSwitch := strings.HasPrefix(key, "buses.")
		if len(other) > 0 && !inherited[key] && !formSwitch {
			t.Errorf("option %s changed: %q reported too", key, other)
		}
		// Back to the start for the next option.
		applied, restart = d.apply(t.Context(), p, parseOptions(t, base))
		if !formSwitch && (len(restart) > 0 || (len(applied) > 0) != (len(live) > 0 || inherited[key])) {
			t.Errorf("option %s back: applied %q, need restart %q", key, applied, restart)
		}
	}
}

func optionsMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func parseOptions(t *testing.T, m map[string]any) *config.Options {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	o, err := config.Parse(data, "options.json")
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	return o
}

// TestReloadOnHUP: a HUP re-reads the options; an unreadable file changes
// nothing, a good one adds a meter and raises the log level while
// running and names what needs a restart.
func TestReloadOnHUP(t *testing.T) {
	broker := mosquittotest.Start(t)
	bus := simtest.ServeDemo(t)
	dir := t.TempDir()
	first := testOptions(t, bus, broker.Addr(), dir, nil)
	var next atomic.Pointer[config.Options]
	hup := make(chan os.Signal, 1)
	gw := startGateway(t, first, Deps{
		Hup: hup,
		Reload: func() (*config.Options, error) {
			if o := next.Load(); o != nil {
				return o, nil
			}
			return nil, errors.New("options.json: line 3: unexpected end of input")
		},
	})
	var st status
	daemontest.Eventually(t, 20*time.Second, "both meters read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 2
	})

	hup <- nil
	daemontest.Eventually(t, 10*time.Second, "the failed reload logged", func() bool {
		return gw.log.Count("options not reloaded") == 1
	})
	next.Store(testOptions(t, bus, broker.Addr(), dir, map[string]any{
		"log_level": "debug",
		"web_port":  8100,
		"meters":    []map[string]any{{"address": "1", "name": "Heat"}, {"address": "2"}, {"address": "3"}},
	}))
	hup <- nil
	daemontest.Eventually(t, 10*time.Second, "the reload logged", func() bool { return gw.log.Count("options reloaded") == 1 })
	line := gw.log.String()[strings.Index(gw.log.String(), "options reloaded"):]
	line, _, _ = strings.Cut(line, "\n")
	for _, want := range []string{"log_level", "meters: 1 added", `need_restart=["web_port"]`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
	daemontest.Eventually(t, 20*time.Second, "the added meter read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 3
	})
	daemontest.Eventually(t, 20*time.Second, "debug lines logged", func() bool { return gw.log.Count(" DBG ") > 0 })
	if err := gw.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}
