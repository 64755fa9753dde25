package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestParseBuses(t *testing.T) {
	o, err := Parse(readFixture(t, "testdata/good/buses.yaml"), "buses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Bus{
		{Name: "plant_room", SerialPort: "/dev/ttyUSB0", Baudrate: 9600, ScanOnStart: true, ScanMode: "primary", Meters: []Meter{
			{Address: mustAddress(t, "5"), Name: "Heat meter", PollInterval: time.Minute, Baudrate: 9600, Enabled: true, Guard: true, Key: "000102030405060708090a0b0c0d0e0f"},
			{Address: mustAddress(t, "6"), PollInterval: 15 * time.Minute, Baudrate: 300, Enabled: true, Guard: true},
		}},
		{Name: "stairwell-a", TCPAddress: "192.168.1.50:10001", Baudrate: 2400, ScanOnStart: false, ScanMode: "secondary", Meters: []Meter{
			{Address: mustAddress(t, "5"), PollInterval: time.Minute, Baudrate: 2400, Enabled: true, Guard: true},
		}},
	}
	if got := o.AllBuses(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got := o.AllBuses()[1].Device(); got != "tcp://192.168.1.50:10001" {
		t.Errorf("got device %q, want tcp://192.168.1.50:10001", got)
	}
	if len(o.Meters) != 0 || o.SerialPort != "" {
		t.Errorf("got top-level meters %v, serial port %q; want none", o.Meters, o.SerialPort)
	}
}

// TestSingleBusFilesUnchanged: option files of the previous release load
// as before and mean one bus named "bus".
func TestSingleBusFilesUnchanged(t *testing.T) {
	for _, file := range []string{"previous-release.yaml", "options.json", "standalone.yaml"} {
		t.Run(file, func(t *testing.T) {
			o, err := Parse(readFixture(t, filepath.Join("testdata", "good", file)), file)
			if err != nil {
				t.Fatal(err)
			}
			if o.Buses != nil {
				t.Errorf("got buses %+v, want none", o.Buses)
			}
			want := []Bus{{Name: DefaultBusName, SerialPort: o.SerialPort, TCPAddress: o.TCPAddress, Baudrate: o.Baudrate,
				Meters: o.Meters, ScanOnStart: o.ScanOnStart, ScanMode: o.ScanMode}}
			if got := o.AllBuses(); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if got := o.AllBuses()[0].Device(); got != o.Device() || got == "" {
				t.Errorf("got bus device %q, want %q", got, o.Device())
			}
		})
	}
}

// TestBaudrateAsText: the Supervisor stores a list(…) option as text.
func TestBaudrateAsText(t *testing.T) {
	o, err := Parse([]byte(`{"serial_port": "/dev/ttyUSB0", "baudrate": "9600", "meters": [{"address": "1", "baudrate": " 300"}]}`), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	if o.Baudrate != 9600 || o.Meters[0].Baudrate != 300 {
		t.Errorf("got baud rates %d and %d, want 9600 and 300", o.Baudrate, o.Meters[0].Baudrate)
	}
	_, err = Parse([]byte(`{"serial_port": "/dev/ttyUSB0", "baudrate": "2401"}`), "options.json")
	if want := "baudrate: 2401 is not supported: want one of 300, 600, 1200, 2400, 4800, 9600, 19200, 38400"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestLoadBusesFromEnvironment(t *testing.T) {
	path := writeOptions(t, "options.yaml", "poll_interval: 30\n")
	t.Setenv("MBUS_GATEWAY_BUSES", `[{"name": "a", "serial_port": "/dev/ttyUSB0", "meters": [{"address": "3"}]}, {"name": "b", "tcp_address": "h:1"}]`)
	o, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.AllBuses(); len(got) != 2 || got[0].Name != "a" || len(got[0].Meters) != 1 || got[0].Meters[0].PollInterval != 30*time.Second || got[1].TCPAddress != "h:1" {
		t.Errorf("got %+v, want buses a (one meter, polled every 30 s) and b", got)
	}
	t.Setenv("MBUS_GATEWAY_BUSES", `[{"name": "a"`)
	_, err = Load(path)
	want := "buses: MBUS_GATEWAY_BUSES is not a JSON list of buses: MBUS_GATEWAY_BUSES: line 1, column 14: unexpected end of file"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestBusWarnings(t *testing.T) {
	o, err := Parse(readFixture(t, "testdata/good/buses.yaml"), "buses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o.ExpireAfter = 5 * time.Minute
	o.Buses[1].Meters[0].Baudrate = 9600
	o.Buses[1].Meters = append(o.Buses[1].Meters[:0], o.Buses[1].Meters[0])
	o.Buses = append(o.Buses, Bus{Name: "c", SerialPort: "/dev/ttyUSB1", Baudrate: 2400, ScanMode: "primary"})
	want := []string{
		"expire_after: 300 s is shorter than buses[0].meters[1].poll_interval (900 s): its entities will turn unavailable between reads",
		"buses[1].meters[0].baudrate: meter 5 talks at 9600 baud, but the TCP converter's speed is fixed on the device: it is read at the converter's speed (buses[1].baudrate 2400) and answers only if that is its speed too",
		"buses[2].meters: no meters and scan_on_start is false: nothing will be read until a scan is started",
	}
	if got := o.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
