package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// The heat meter of the demo bus, as Home Assistant sees it.
const (
	heatMeter = "kam_06855817"
	password  = "e2e-Secret-Passw0rd"
)

// fakeSupervisor answers GET /services/mqtt like the Supervisor with the
// Mosquitto add-on installed, pointing at broker (host:port). The
// credentials it hands out are wrong on purpose: the options' own
// credentials must take precedence.
func fakeSupervisor(t *testing.T, broker string) *httptest.Server {
	t.Helper()
	host, port, _ := strings.Cut(broker, ":")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/mqtt" || r.Header.Get("Authorization") != "Bearer e2e-token" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"result":"error","message":"unexpected request"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":"ok","data":{"host":"` + host + `","port":` + port +
			`,"ssl":false,"protocol":"3.1.1","username":"addons","password":"not-this-one","addon":"core_mosquitto"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRun runs the gateway as the add-on does, except for the paths:
// options.json in a temporary data directory, the broker from the
// (fake) Supervisor, credentials from the options.
func TestRun(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.WithUsers(map[string]string{"gateway": password, "test": "test"}))
	// paho takes credentials from the broker URL.
	brokerURL := "tcp://test:test@" + broker.Addr()
	rec := mosquittotest.Subscribe(t, brokerURL, "#")
	sup := fakeSupervisor(t, broker.Addr())
	dir := t.TempDir()
	webPort, metricsPort := freePort(t), freePort(t)
	path := writeOptions(t, dir, map[string]any{
		"tcp_address":   startBus(t),
		"poll_interval": 5,
		"baudrate":      9600,
		"meters":        []map[string]any{{"address": "1", "name": "Heat"}, {"address": "2"}, {"address": "7"}},
		"mqtt":          map[string]any{"username": "gateway", "password": password},
		"data_dir":      dir,
		"web_port":      webPort,
		"metrics_port":  metricsPort,
		"web_allow":     []string{"127.0.0.1"},
	})
	gw := start(t, hermeticEnv("SUPERVISOR_TOKEN=e2e-token", "SUPERVISOR_API="+sup.URL), "run", "--config", path)

	first := rec.WaitFor("mbus/"+heatMeter+"/reading", nil, 15*time.Second) // the first meter is read first
	t.Logf("start-up to first reading on the broker: %v (bus time included)", first.At.Sub(gw.started).Round(time.Millisecond))

	bridge := rec.WaitFor("mbus/bridge/state", nil, 10*time.Second)
	if got := string(bridge.Payload); got != "online" {
		t.Errorf("mbus/bridge/state: got %q, want online", got)
	}
	disc := rec.WaitFor("homeassistant/device/"+heatMeter+"/config", nil, 10*time.Second)
	var device struct {
		Dev  struct{ Identifiers []string } `json:"dev"`
		O    struct{ Name string }          `json:"o"`
		Cmps map[string]struct {
			P          string `json:"p"`
			StateTopic string `json:"state_topic"`
			Unit       string `json:"unit_of_measurement"`
			Class      string `json:"device_class"`
		} `json:"cmps"`
	}
	if err := json.Unmarshal(disc.Payload, &device); err != nil {
		t.Fatalf("discovery payload: %v: %s", err, disc.Payload)
	}
	if len(device.Dev.Identifiers) == 0 || device.O.Name == "" || len(device.Cmps) == 0 {
		t.Errorf("discovery: got %d identifiers, origin %q, %d components; want dev, o and cmps",
			len(device.Dev.Identifiers), device.O.Name, len(device.Cmps))
	}
	var energy bool
	for _, c := range device.Cmps {
		if c.StateTopic == "mbus/"+heatMeter+"/energy" {
			energy = c.P == "sensor" && c.Unit == "kWh" && c.Class == "energy"
		}
	}
	if !energy {
		t.Errorf("discovery: no sensor on mbus/%s/energy with kWh and device class energy in %s", heatMeter, disc.Payload)
	}

	// Live subscribers get retain=0 (MQTT 3.1.1, 3.3.1.3); a new
	// subscription shows what the broker keeps.
	late := mosquittotest.Subscribe(t, brokerURL, "mbus/"+heatMeter+"/+", "homeassistant/device/"+heatMeter+"/config")
	for _, tt := range []struct{ topic, want string }{
		{"mbus/" + heatMeter + "/energy", "37351"},
		{"mbus/" + heatMeter + "/availability", "online"},
		{"homeassistant/device/" + heatMeter + "/config", string(disc.Payload)},
	} {
		got := late.WaitFor(tt.topic, nil, 10*time.Second)
		if string(got.Payload) != tt.want || !got.Retained {
			t.Errorf("%s: got %q retained %v, want %q retained", tt.topic, got.Payload, got.Retained, tt.want)
		}
	}
	reading := rec.WaitFor("mbus/"+heatMeter+"/reading", nil, 10*time.Second)
	var rd struct {
		Meter   string    `json:"meter"`
		Name    string    `json:"name"`
		Time    time.Time `json:"time"`
		Records []any     `json:"records"`
	}
	if err := json.Unmarshal(reading.Payload, &rd); err != nil {
		t.Fatalf("reading: %v: %s", err, reading.Payload)
	}
	if rd.Meter != heatMeter || rd.Name != "Heat" || rd.Time.IsZero() || len(rd.Records) != 27 || reading.Retained {
		t.Errorf("reading: got meter %q name %q time %v, %d records, retained %v; want %s, Heat, a time, 27 records, not retained",
			rd.Meter, rd.Name, rd.Time, len(rd.Records), reading.Retained, heatMeter)
	}

	var health struct{ Status string }
	if code := getJSON(t, endpoint(webPort, "/health"), &health); code != http.StatusOK || health.Status != "ok" {
		t.Errorf("/health: got %d %q, want 200 ok", code, health.Status)
	}
	var st status
	eventually(t, 15*time.Second, "/status shows 3 meters read", func() bool {
		return getJSON(t, endpoint(metricsPort, "/status"), &st) == http.StatusOK && st.read() == 3
	})
	if len(st.Meters) != 3 {
		t.Errorf("/status: got %d meters, want 3", len(st.Meters))
	}

	sent := gw.signal(syscall.SIGTERM)
	if code := gw.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	t.Logf("SIGTERM to exit: %v", time.Since(sent).Round(time.Millisecond))
	rec.WaitFor("mbus/bridge/state", func(m mosquittotest.Message) bool { return string(m.Payload) == "offline" }, 5*time.Second)
	after := mosquittotest.Subscribe(t, brokerURL, "mbus/bridge/state")
	if got := after.WaitFor("mbus/bridge/state", nil, 5*time.Second); string(got.Payload) != "offline" || !got.Retained {
		t.Errorf("mbus/bridge/state after exit: got %q retained %v, want offline retained", got.Payload, got.Retained)
	}

	logs := gw.stderr.String()
	if strings.Contains(logs, password) || strings.Contains(gw.stdout.String(), password) {
		t.Errorf("the MQTT password appears in the output:\n%s", logs)
	}
	if strings.Contains(logs, "not-this-one") {
		t.Error("the Supervisor's password appears in the log")
	}
	if !strings.Contains(logs, `"password":"***"`) {
		t.Errorf("log: want the options with the password masked, got:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "mbus-gateway.db")); err != nil {
		t.Errorf("store in data_dir: %v", err)
	}
}
