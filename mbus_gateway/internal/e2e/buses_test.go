package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// busesStatus is the part of GET /status with several buses the tests read.
type busesStatus struct {
	Bus struct {
		Name string `json:"name"`
	} `json:"bus"`
	Buses []struct {
		Name   string `json:"name"`
		Device string `json:"device"`
		State  string `json:"state"`
	} `json:"buses"`
	Meters []struct {
		ID      string `json:"id"`
		Bus     string `json:"bus"`
		Address string `json:"address"`
	} `json:"meters"`
}

// busReadings counts the readings of each meter on the broker whose
// transmission number (see countingMeter) is above the one in since.
func busReadings(t *testing.T, rec *mosquittotest.Recorder) map[string]int {
	t.Helper()
	last := map[string]int{}
	for _, m := range rec.Messages("") {
		if !strings.HasSuffix(m.Topic, "/reading") {
			continue
		}
		seq, _, meter, err := transmission(m.Payload)
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		last[meter] = max(last[meter], seq)
	}
	return last
}

// TestBuses: one gateway, two buses read in parallel: a USB master
// (pseudo-terminal) in the plant room and a TCP converter in a
// stairwell. Each bus's meters, status entry, metrics and device
// entities carry its name; a meter on the stairwell with the same
// manufacturer and ID as one in the plant room gets an id of its own.
// The converter goes away and comes back: meanwhile the plant room's
// meters keep being read and published, the stairwell is down on every
// channel, and it recovers.
func TestBuses(t *testing.T) {
	plant := sim.Setup{Options: sim.Options{Advance: true}, Meters: []sim.Meter{countingMeter(t, 1, 70000001), countingMeter(t, 2, 70000002)}}
	stair := sim.Setup{Options: sim.Options{Advance: true}, Meters: []sim.Meter{countingMeter(t, 1, 70000001), countingMeter(t, 2, 70000003)}}
	plantBus, err := plant.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	stairBus, err := stair.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "usb-M-Bus_Master-if00-port0")
	servePTY(t, plantBus, link)
	conv := startConverter(t, stairBus)

	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#", "homeassistant/#")
	addresses := []map[string]any{{"address": "1"}, {"address": "2"}}
	options, port := gatewayOptions(t, t.TempDir(), "", broker, map[string]any{
		"poll_interval": 1,
		"buses": []map[string]any{
			{"name": "plant_room", "serial_port": link, "meters": addresses},
			{"name": "stair-a", "tcp_address": conv.addr, "meters": addresses},
		},
	})
	gw := start(t, hermeticEnv(), "run", "--config", options)

	meters := []string{"abb_70000001", "abb_70000002", "abb_70000003"}
	eventually(t, 30*time.Second, "readings of every meter of both buses", func() bool {
		got := busReadings(t, rec)
		return len(got) == 4 && got[meters[0]] > 0 && got[meters[1]] > 0 && got[meters[2]] > 0
	})
	var st busesStatus
	getJSON(t, endpoint(port, "/status"), &st)
	var names []string
	for _, b := range st.Buses {
		names = append(names, b.Name+" "+b.Device)
	}
	if want := []string{"plant_room " + link, "stair-a tcp://" + conv.addr}; !slices.Equal(names, want) || st.Bus.Name != "plant_room" {
		t.Errorf("/status buses: got %q (bus %q), want %q, the first as bus", names, st.Bus.Name, want)
	}
	// Whichever of the twins answered first has the plain id; the other
	// one's names its bus and address.
	byBus := map[string]string{}
	for _, m := range st.Meters {
		if m.Address == "1" {
			byBus[m.Bus] = m.ID
		}
	}
	plainPlant := byBus["plant_room"] == "abb_70000001" && byBus["stair-a"] == "abb_70000001_at_stair_a_1"
	plainStair := byBus["stair-a"] == "abb_70000001" && byBus["plant_room"] == "abb_70000001_at_plant_room_1"
	if !plainPlant && !plainStair {
		t.Errorf("ids of the twins at address 1: got %v, want one plain and one with its bus and address", byBus)
	}
	twin := byBus["stair-a"]
	if plainStair {
		twin = byBus["plant_room"]
	}
	eventually(t, 15*time.Second, "the twin's readings on its own topics", func() bool { return busReadings(t, rec)[twin] > 0 })
	metrics := getText(t, endpoint(port, "/metrics"))
	for _, want := range []string{`mbus_bus_up{bus="plant_room"} 1`, `mbus_bus_up{bus="stair-a"} 1`, `mbus_polls_total{bus="stair-a",meter="abb_70000003",result="ok"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	rec.WaitFor("mbus/bridge/bus/stair-a/bus", payloadIs("ON"), 15*time.Second)
	rec.WaitFor("mbus/bridge/bus/plant_room/bus_state", payloadIs("up"), 15*time.Second)

	// The stairwell's converter goes away.
	off := time.Now()
	conv.off()
	eventually(t, 30*time.Second, "the stairwell down in /metrics", func() bool {
		return strings.Contains(getText(t, endpoint(port, "/metrics")), `mbus_bus_up{bus="stair-a"} 0`)
	})
	rec.WaitFor("mbus/bridge/bus/stair-a/bus", func(m mosquittotest.Message) bool { return string(m.Payload) == "OFF" && m.At.After(off) }, 15*time.Second)
	// Meanwhile the plant room keeps its schedule: three more readings
	// of each of its meters reach the broker while the stairwell is off.
	before := busReadings(t, rec)
	plantIDs := []string{byBus["plant_room"], "abb_70000002"}
	eventually(t, 30*time.Second, "three more readings of each plant room meter", func() bool {
		now := busReadings(t, rec)
		return now[plantIDs[0]] >= before[plantIDs[0]]+3 && now[plantIDs[1]] >= before[plantIDs[1]]+3
	})
	getJSON(t, endpoint(port, "/status"), &st)
	if got := st.Buses[1].State; got == "up" {
		t.Errorf("stairwell state with its converter off: got %q, want it not up", got)
	}
	if got := st.Buses[0].State; got != "up" {
		t.Errorf("plant room state while the stairwell is off: got %q, want up", got)
	}

	// It comes back, and its meters are read again.
	conv.on()
	before = busReadings(t, rec)
	eventually(t, 2*time.Minute, "readings of the stairwell's meters again", func() bool {
		now := busReadings(t, rec)
		return now["abb_70000003"] > before["abb_70000003"] && now[byBus["stair-a"]] > before[byBus["stair-a"]]
	})
	eventually(t, 15*time.Second, "the stairwell up in /metrics", func() bool {
		return strings.Contains(getText(t, endpoint(port, "/metrics")), `mbus_bus_up{bus="stair-a"} 1`)
	})
	if got := plantBus.Meters()[0].TelegramsSent; got < 5 {
		t.Errorf("plant room meter 1 sent %d telegrams, want its schedule kept", got)
	}
	stop(t, gw)
}

// TestPreviousReleaseOptions: the options file of the previous release
// (single bus, no buses:) validates unchanged, and a gateway started on it,
// with only the machine's own values replaced (device, broker, ports,
// data directory), serves its one bus as before: unlabelled bus metrics,
// the single-bus fields of /status and the gateway device's bus entities
// on their old topics.
func TestPreviousReleaseOptions(t *testing.T) {
	file := filepath.Join("..", "config", "testdata", "good", "previous-release.yaml")
	if p := start(t, hermeticEnv(), "validate-config", file); p.wait(10*time.Second) != 0 {
		t.Fatalf("validate-config %s: exit %d\n%s", file, p.code, p.stderr)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	bus, err := sim.Setup{Options: sim.Options{Advance: true}, Meters: []sim.Meter{countingMeter(t, 5, 70000005)}}.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB0")
	servePTY(t, bus, link)
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	host, brokerPort, _ := strings.Cut(broker.Addr(), ":")
	metricsPort := freePort(t)
	text := string(raw)
	for old, repl := range map[string]string{
		"serial_port: /dev/ttyUSB0":       "serial_port: " + link,
		"host: 192.168.1.10":              "host: " + host,
		"port: 1883":                      "port: " + brokerPort,
		"web_port: 8099":                  "web_port: " + strconv.Itoa(freePort(t)),
		"metrics_port: 9105":              "metrics_port: " + strconv.Itoa(metricsPort),
		"data_dir: /var/lib/mbus-gateway": "data_dir: " + dir,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("%s lacks %q", file, old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	options := filepath.Join(dir, "options.yaml")
	if err := os.WriteFile(options, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := start(t, hermeticEnv(), "run", "--config", options)

	rec.WaitFor("mbus/abb_70000005/reading", nil, 30*time.Second)
	rec.WaitFor("mbus/bridge/bus_state", payloadIs("up"), 15*time.Second)
	for _, m := range rec.Messages("") {
		if strings.HasPrefix(m.Topic, "mbus/bridge/bus/") {
			t.Errorf("a single bus published on %s", m.Topic)
		}
	}
	var st busesStatus
	getJSON(t, endpoint(metricsPort, "/status"), &st)
	if len(st.Buses) != 1 || st.Buses[0].Name != "bus" || st.Bus.Name != "bus" || st.Buses[0].Device != link {
		t.Errorf("/status: bus %q, buses %+v; want the one bus named bus on %s", st.Bus.Name, st.Buses, link)
	}
	if len(st.Meters) != 3 {
		t.Errorf("/status: %d meters, want the file's 3", len(st.Meters))
	}
	metrics := getText(t, endpoint(metricsPort, "/metrics"))
	for _, want := range []string{"\nmbus_bus_up 1\n", `mbus_polls_total{meter="abb_70000005",result="ok"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(metrics, `bus="`) {
		t.Error("/metrics of a single bus has a bus label")
	}
	stop(t, gw)
}
