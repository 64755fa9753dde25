package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// testFS holds the frame files the bus files below refer to.
func testFS(t testing.TB) fstest.MapFS {
	t.Helper()
	kam, err := os.ReadFile(filepath.Join(libmbusDir, "kamstrup_multical_601.hex"))
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{
		"k.hex":     {Data: kam},
		"bad.hex":   {Data: []byte("68 zz\n")},
		"short.hex": {Data: []byte("68 07 07 68 08 01 7A 01 00 00 00 84 16")}, // short header: no secondary address
		"ack.hex":   {Data: []byte("E5")},
	}
}

func TestLoadSample(t *testing.T) {
	s, err := LoadBusFile("testdata/sample.bus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Options.Baud != 2400 || s.Options.ResponseDelay != 10*time.Millisecond || s.Options.Seed != 1 {
		t.Errorf("options: got %+v", s.Options)
	}
	b, err := s.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		primary   byte
		secondary string
		telegrams int
		medium    mbus.Medium
	}{
		{1, "068558172D2C0804", 1, 0x04}, // heat
		{2, "1200007177041407", 1, 0x07}, // water
		{3, "1002038777041403", 1, 0x03}, // gas
		{4, "01030101AC484008", 1, 0x08}, // heat cost allocator
		{5, "0500023E434C1202", 1, 0x02}, // electricity, hex digits in the ID
		{5, "050002E500001202", 1, 0x02}, // electricity, same primary address
		{6, "153124202D4D0104", 3, 0x04}, // heat, three telegrams
	}
	got := b.Meters()
	if len(got) != len(want) {
		t.Fatalf("got %d meters, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Primary != w.primary || g.Secondary.String() != w.secondary || g.Telegrams != w.telegrams || g.Secondary.Medium() != w.medium {
			t.Errorf("meter %d: got primary %d secondary %s telegrams %d medium %v, want %d %s %d %v",
				i, g.Primary, g.Secondary, g.Telegrams, g.Secondary.Medium(), w.primary, w.secondary, w.telegrams, w.medium)
		}
	}
}

func TestBusFileGood(t *testing.T) {
	file := `
baud: 9600
response_delay: 25ms
seed: 42
fixed_access_number: true
advance: true
meters:
  - name: override
    primary: 250
    secondary: "12345678AABBCCDD"
    frames: [k.hex]
    delay: 1ms
    faults:
      - kind: slow
        delay: 2s
      - kind: no_answer
        every: 4
      - kind: corrupt
        probability: 0.25
  - primary: 0
    telegrams: ["` + strings.TrimSpace(string(testFS(t)["k.hex"].Data)) + `"]
    key: 000102030405060708090A0B0C0D0E0F
`
	s, err := ParseBusFile("bus.yaml", []byte(file), testFS(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Options, (Options{Baud: 9600, ResponseDelay: 25 * time.Millisecond, Seed: 42, FixedAccessNumber: true, Advance: true}); got.Baud != want.Baud ||
		got.ResponseDelay != want.ResponseDelay || got.Seed != want.Seed || got.FixedAccessNumber != want.FixedAccessNumber || got.Advance != want.Advance {
		t.Errorf("options: got %+v, want %+v", got, want)
	}
	m := s.Meters[0]
	wantFaults := []Fault{{Kind: FaultSlow, Delay: 2 * time.Second}, {Kind: FaultNoAnswer, Every: 4}, {Kind: FaultCorrupt, Probability: 0.25}}
	if m.Name != "override" || m.Primary != 250 || m.Secondary.String() != "12345678AABBCCDD" || m.Delay != time.Millisecond || len(m.Faults) != 3 {
		t.Fatalf("meter 0: got %+v", m)
	}
	for i := range wantFaults {
		if m.Faults[i] != wantFaults[i] {
			t.Errorf("fault %d: got %+v, want %+v", i, m.Faults[i], wantFaults[i])
		}
	}
	if s.Meters[1].Name != "meters[1]" || s.Meters[1].Primary != 0 || len(s.Meters[1].Key) != 16 || s.Meters[1].Key[15] != 0x0F {
		t.Errorf("meter 1: got name %q primary %d key % X", s.Meters[1].Name, s.Meters[1].Primary, s.Meters[1].Key)
	}
	// The override goes into the header of the telegrams the meter sends.
	b, err := s.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	m0 := b.meters[0]
	h, err := mbus.DecodeTelegram(mustFrame(t, m0.telegram(0)))
	if h == nil || h.Header.ID != "12345678" || h.Header.Manufacturer != mbus.ManufacturerName(0xBBAA) {
		t.Errorf("header of the overridden meter: got %+v (%v)", h, err)
	}
}

func mustFrame(t *testing.T, b []byte) mbus.Frame {
	t.Helper()
	f, _, err := mbus.DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBusFileErrors(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // one line per problem
	}{
		{"empty", ``, []string{"bus.yaml:0: empty bus file: want a mapping with meters"}},
		{"not yaml", "meters: [", []string{"bus.yaml: line 1: did not find expected node content"}},
		{"list at the top", "- 1\n", []string{"bus.yaml:1: bus file: want a mapping of keys to values"}},
		{"no meters", "baud: 2400\n", []string{"bus.yaml:1: no meters: add a list under meters"}},
		{"meters not a list", "meters: 3\n", []string{"bus.yaml:1: meters: want a list of meters"}},
		{"unknown top key", "bauds: 2400\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			`bus.yaml:1: bus file: unknown key "bauds" (want advance, baud, echo, echo_delay, fixed_access_number, meters, response_delay, seed)`}},
		{"advance not a bool", "advance: yes\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			`bus.yaml:1: advance: want true or false, got "yes"`}},
		{"fixed_access_number a list", "fixed_access_number: [true]\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			"bus.yaml:1: fixed_access_number: want a single value"}},
		{"duplicate key", "baud: 2400\nbaud: 9600\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			`bus.yaml:2: bus file: duplicate key "baud"`}},
		{"bad baud", "baud: 2401\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			"bus.yaml:1: baud: 2401 is not an M-Bus baud rate (want 0 or 300, 600, 1200, 2400, 4800, 9600, 19200, 38400)"}},
		{"baud not a number", "baud: fast\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			`bus.yaml:1: baud: want a whole number, got "fast"`}},
		{"bad delay", "response_delay: 10\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			`bus.yaml:1: response_delay: want a duration such as 10ms or 1.5s, got "10"`}},
		{"negative delay", "response_delay: -1s\nmeters: [{primary: 1, frames: [k.hex]}]\n", []string{
			"bus.yaml:1: response_delay: must not be negative, got -1s"}},
		{"unknown meter key", "meters:\n  - primary: 1\n    frame: [k.hex]\n", []string{
			`bus.yaml:3: meters[0]: unknown key "frame" (want delay, faults, frames, key, name, primary, secondary, telegrams)`,
			"bus.yaml:2: meters[0]: give either frames (files) or telegrams (hex), not both or neither"}},
		{"bad key", "meters:\n  - primary: 1\n    frames: [k.hex]\n    key: 0011\n", []string{
			"bus.yaml:4: meters[0].key: want 32 hex digits (an AES-128 key)"}},
		{"key for a short header", "meters:\n  - primary: 1\n    secondary: 12345678AABBCCDD\n    frames: [short.hex]\n    key: 000102030405060708090A0B0C0D0E0F\n", []string{
			`bus.yaml:2: meters[0]: meter "meters[0]": telegram 1: mbus: encrypt: long frame with CI 0x7A: want a variable data response with a long header`}},
		{"no primary", "meters:\n  - frames: [k.hex]\n", []string{"bus.yaml:2: meters[0]: primary is missing"}},
		{"primary too big", "meters:\n  - primary: 251\n    frames: [k.hex]\n", []string{"bus.yaml:2: meters[0].primary: 251 is out of range 0-250"}},
		{"primary a list", "meters:\n  - primary: [1]\n    frames: [k.hex]\n", []string{"bus.yaml:2: meters[0].primary: want a single value"}},
		{"both sources", "meters:\n  - primary: 1\n    frames: [k.hex]\n    telegrams: [E5]\n", []string{
			"bus.yaml:4: meters[0].telegrams[0]: ack frame: not a response telegram",
			"bus.yaml:2: meters[0]: give either frames (files) or telegrams (hex), not both or neither"}},
		{"missing file", "meters:\n  - primary: 1\n    frames: [nope.hex]\n", []string{
			"bus.yaml:3: meters[0].frames[0]: open nope.hex: file does not exist"}},
		{"bad hex file", "meters:\n  - primary: 1\n    frames: [bad.hex]\n", []string{
			`bus.yaml:3: meters[0].frames[0] (bad.hex): hex: 'z' is not a hex digit`}},
		{"ack is no telegram", "meters:\n  - primary: 1\n    frames: [ack.hex]\n", []string{
			"bus.yaml:3: meters[0].frames[0] (ack.hex): ack frame: not a response telegram"}},
		{"odd hex", "meters:\n  - primary: 1\n    telegrams: [\"68 0\"]\n", []string{
			"bus.yaml:3: meters[0].telegrams[0]: hex: odd number of digits (3)"}},
		{"bad checksum", "meters:\n  - primary: 1\n    telegrams: [\"68 03 03 68 08 01 72 00 16\"]\n", []string{
			"bus.yaml:3: meters[0].telegrams[0]: mbus: at byte 7: checksum mismatch: got 0x00, want 0x7B"}},
		{"no secondary", "meters:\n  - primary: 1\n    frames: [short.hex]\n", []string{
			`bus.yaml:2: meters[0]: meter "meters[0]": no secondary address: first telegram has CI 0x7A without long header; set the secondary address`}},
		{"bad secondary", "meters:\n  - primary: 1\n    secondary: 1234\n    frames: [k.hex]\n", []string{
			`bus.yaml:3: meters[0].secondary: secondary address "1234": want 16 hex digits, got 4 characters`}},
		{"wildcard secondary", "meters:\n  - primary: 1\n    secondary: 1234567FFFFFFFFF\n    frames: [k.hex]\n", []string{
			"bus.yaml:3: meters[0].secondary: 1234567FFFFFFFFF has wildcards (F); a meter needs its full address"}},
		{"unknown fault", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults: [{kind: flaky}]\n", []string{
			`bus.yaml:4: meters[0].faults[0].kind: unknown fault "flaky" (want one of no_answer, corrupt, checksum, truncate, echo, slow, hang_up)`}},
		{"fault without kind", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults:\n      - every: 2\n", []string{
			"bus.yaml:5: meters[0].faults[0]: kind is missing"}},
		{"fault every and probability", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults:\n      - {kind: echo, every: 2, probability: 0.5}\n", []string{
			"bus.yaml:5: meters[0].faults[0]: give every or probability, not both"}},
		{"fault bad probability", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults:\n      - {kind: echo, probability: 2}\n", []string{
			`bus.yaml:5: meters[0].faults[0].probability: want a number above 0 and at most 1, got "2"`}},
		{"fault every zero", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults:\n      - {kind: echo, every: 0}\n", []string{
			"bus.yaml:5: meters[0].faults[0].every: 0 is out of range 1-1073741824"}},
		{"faults not a list", "meters:\n  - primary: 1\n    frames: [k.hex]\n    faults: {kind: echo}\n", []string{
			"bus.yaml:4: meters[0].faults: want a list"}},
		{"every problem reported", "baud: 1\nmeters:\n  - primary: 999\n    frames: [k.hex]\n  - primary: 2\n    frames: [nope.hex]\n", []string{
			"bus.yaml:1: baud: 1 is not an M-Bus baud rate (want 0 or 300, 600, 1200, 2400, 4800, 9600, 19200, 38400)",
			"bus.yaml:3: meters[0].primary: 999 is out of range 0-250",
			"bus.yaml:6: meters[1].frames[0]: open nope.hex: file does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBusFile("bus.yaml", []byte(tt.file), testFS(t))
			if err == nil {
				t.Fatal("got no error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestLoadBusFileMissing(t *testing.T) {
	_, err := LoadBusFile(filepath.Join(t.TempDir(), "none.bus.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "bus file: open ") || !strings.HasSuffix(err.Error(), "none.bus.yaml: no such file or directory") {
		t.Errorf("got %v", err)
	}
}

func TestLoadFramesDir(t *testing.T) {
	s, err := LoadFramesDir("testdata/frames")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name      string
		telegrams int
	}{
		{"electricity-meter-1", 1},
		{"electricity-meter-2", 1},
		{"itron_cyble_m-bus_v1.4_gas", 1},
		{"itron_cyble_m-bus_v1.4_water", 1},
		{"kamstrup_multical_601", 1},
		{"multi", 3},
		{"rel_padpuls3", 1},
	}
	if len(s.Meters) != len(want) {
		t.Fatalf("got %d meters, want %d", len(s.Meters), len(want))
	}
	for i, w := range want {
		m := s.Meters[i]
		if m.Name != w.name || len(m.Telegrams) != w.telegrams || int(m.Primary) != i+1 {
			t.Errorf("meter %d: got %q with %d telegrams at %d, want %q with %d at %d", i, m.Name, len(m.Telegrams), m.Primary, w.name, w.telegrams, i+1)
		}
	}
	// The multi-telegram meter's telegrams are in number order.
	for i, tel := range s.Meters[5].Telegrams {
		if access := tel[dataOff+8]; int(access) != i+1 {
			t.Errorf("multi telegram %d: access number %d, want %d", i, access, i+1)
		}
	}
}

func TestLoadFramesDirErrors(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string // after "frames: DIR: " or "frames: "
	}{
		{"empty", map[string]string{"notes.txt": "x"}, "no .hex files"},
		{"bad hex", map[string]string{"a.hex": "zz"}, `a.hex: hex: 'z' is not a hex digit`},
		{"short header", map[string]string{"a.hex": "68 07 07 68 08 01 7A 01 00 00 00 84 16"},
			`meter "a": no secondary address: first telegram has CI 0x7A without long header; set the secondary address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, tt.files)
			_, err := LoadFramesDir(dir)
			if err == nil {
				t.Fatal("got no error")
			}
			got := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "frames: "), dir+": ")
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzBusFile(f *testing.F) {
	sample, err := os.ReadFile("testdata/sample.bus.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte("meters:\n  - primary: 1\n    frames: [k.hex]\n    faults: [{kind: echo, every: 2}]\n"))
	f.Add([]byte("baud: 2400\nresponse_delay: 5ms\nmeters: [{primary: 1, telegrams: [\"68 03 03 68 08 01 72 7B 16\"]}]\n"))
	f.Add([]byte("meters: [{primary: 1, secondary: 12345678AABBCCDD, frames: [short.hex]}]"))
	fsys := testFS(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseBusFile("fuzz.yaml", data, fsys)
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error message")
			}
			return
		}
		// A file that parses builds a bus.
		if _, err := s.NewBus(); err != nil {
			t.Errorf("parsed, but NewBus: %v", err)
		}
	})
}
