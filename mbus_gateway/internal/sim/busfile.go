package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// Setup is what a bus file or a frames folder describes: the bus options
// and its meters.
type Setup struct {
	Options Options
	Meters  []Meter
}

// NewBus builds the bus a Setup describes.
func (s Setup) NewBus() (*Bus, error) {
	b := NewBus(s.Options)
	for _, m := range s.Meters {
		if err := b.AddMeter(m); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Baud rates of EN 13757-2 (clause 4.2): 300 to 38400; 0 means no pacing.
var baudRates = append([]int{0}, transport.Bauds...)

// LoadBusFile reads a bus file (YAML). Paths in `frames:` are relative to
// the file's folder. Every problem is reported, each as "FILE:LINE: …".
//
//	baud: 2400             # optional, 0 (default): no pacing
//	response_delay: 10ms   # optional, default DefaultResponseDelay
//	seed: 1                # optional, seeds probabilistic faults
//	fixed_access_number: false # optional: true keeps each telegram's own
//	advance: false         # optional: true grows the first counter per answer
//	echo: false            # optional: true echoes every request (a converter)
//	echo_delay: 0s         # optional: the echo comes back this late
//	meters:
//	  - name: heat         # optional
//	    primary: 1         # 0-250, required
//	    secondary: 0685581...  # optional override, 16 hex digits
//	    frames: [kamstrup.hex] # telegram files, or
//	    telegrams: ["68 …"]    # telegrams as hex (one of the two)
//	    delay: 5ms         # optional, added to response_delay
//	    key: 00112233…     # optional: AES-128 key, 32 hex digits; sends in security mode 5
//	    faults:            # optional
//	      - kind: no_answer   # no_answer corrupt checksum truncate echo slow hang_up
//	        every: 3          # or probability: 0.1, or neither: always
//	        delay: 2s         # slow only: how far past the window
//	        times: 1          # optional: the fault ends after firing this often
func LoadBusFile(path string) (Setup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Setup{}, fmt.Errorf("bus file: %w", err)
	}
	return ParseBusFile(path, data, hostDir(filepath.Dir(path)))
}

// hostDir opens relative paths in a folder and absolute paths as they are,
// so a bus file may point anywhere on the host.
type hostDir string

func (d hostDir) Open(name string) (fs.File, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(string(d), name)
	}
	return os.Open(name)
}

// ParseBusFile reads the bus file data named name (used in messages);
// frame files are opened in fsys.
func ParseBusFile(name string, data []byte, fsys fs.FS) (Setup, error) {
	p := &busParser{name: name, fsys: fsys}
	s := p.parse(data)
	if len(p.errs) > 0 {
		return Setup{}, errors.Join(p.errs...)
	}
	return s, nil
}

// busParser walks the YAML tree itself, rather than decoding into
// structs, so that every message carries the line of the offending value
// and unknown keys are found at every level.
type busParser struct {
	name string
	fsys fs.FS
	errs []error
}

func (p *busParser) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.name, line, fmt.Sprintf(format, args...)))
}

func (p *busParser) parse(data []byte) Setup {
	s := Setup{Options: Options{ResponseDelay: DefaultResponseDelay}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %s", p.name, strings.TrimPrefix(err.Error(), "yaml: ")))
		return s
	}
	if len(doc.Content) == 0 {
		p.errorf(nil, "empty bus file: want a mapping with meters")
		return s
	}
	var meters *yaml.Node
	p.mapping(doc.Content[0], "bus file", map[string]func(*yaml.Node){
		"baud": func(v *yaml.Node) {
			s.Options.Baud = p.integer(v, "baud", 0, 38400)
			if !slices.Contains(baudRates, s.Options.Baud) {
				p.errorf(v, "baud: %d is not an M-Bus baud rate (want 0 or 300, 600, 1200, 2400, 4800, 9600, 19200, 38400)", s.Options.Baud)
			}
		},
		"response_delay": func(v *yaml.Node) { s.Options.ResponseDelay = p.duration(v, "response_delay") },
		"seed":           func(v *yaml.Node) { s.Options.Seed = uint64(p.integer(v, "seed", 0, 1<<62)) }, //nolint:gosec // G115: integer keeps it in 0…2^62
		"fixed_access_number": func(v *yaml.Node) {
			s.Options.FixedAccessNumber = p.boolean(v, "fixed_access_number")
		},
		"advance":    func(v *yaml.Node) { s.Options.Advance = p.boolean(v, "advance") },
		"echo":       func(v *yaml.Node) { s.Options.Echo = p.boolean(v, "echo") },
		"echo_delay": func(v *yaml.Node) { s.Options.EchoDelay = p.duration(v, "echo_delay") },
		"meters":     func(v *yaml.Node) { meters = v },
	})
	if meters == nil {
		if len(p.errs) == 0 {
			p.errorf(doc.Content[0], "no meters: add a list under meters")
		}
		return s
	}
	if meters.Kind != yaml.SequenceNode || len(meters.Content) == 0 {
		p.errorf(meters, "meters: want a list of meters")
		return s
	}
	for i, n := range meters.Content {
		if m, ok := p.meter(n, fmt.Sprintf("meters[%d]", i)); ok {
			s.Meters = append(s.Meters, m)
		}
	}
	return s
}

// mapping calls the handler of each key of n and reports unknown,
// duplicate and non-scalar keys.
func (p *busParser) mapping(n *yaml.Node, what string, fields map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of keys to values", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fields[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode || !ok:
			keys := make([]string, 0, len(fields))
			for name := range fields {
				keys = append(keys, name)
			}
			slices.Sort(keys)
			p.errorf(k, "%s: unknown key %q (want %s)", what, k.Value, strings.Join(keys, ", "))
		case seen[k.Value]:
			p.errorf(k, "%s: duplicate key %q", what, k.Value)
		default:
			seen[k.Value] = true
			f(v)
		}
	}
}

func (p *busParser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a single value", what)
		return "", false
	}
	return n.Value, true
}

func (p *busParser) integer(n *yaml.Node, what string, lo, hi int) int {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		p.errorf(n, "%s: want a whole number, got %q", what, s)
		return 0
	}
	if v < lo || v > hi {
		p.errorf(n, "%s: %d is out of range %d-%d", what, v, lo, hi)
		return 0
	}
	return v
}

func (p *busParser) boolean(n *yaml.Node, what string) bool {
	s, ok := p.scalar(n, what)
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	p.errorf(n, "%s: want true or false, got %q", what, s)
	return false
}

func (p *busParser) duration(n *yaml.Node, what string) time.Duration {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(n, "%s: want a duration such as 10ms or 1.5s, got %q", what, s)
		return 0
	}
	if d < 0 {
		p.errorf(n, "%s: must not be negative, got %s", what, s)
		return 0
	}
	return d
}

func (p *busParser) list(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list", what)
		return nil
	}
	return n.Content
}

func (p *busParser) meter(n *yaml.Node, what string) (Meter, bool) {
	var m Meter
	errs := len(p.errs)
	var hasPrimary, hasFrames, hasTelegrams bool
	p.mapping(n, what, map[string]func(*yaml.Node){
		"name": func(v *yaml.Node) { m.Name, _ = p.scalar(v, what+".name") },
		"primary": func(v *yaml.Node) {
			hasPrimary = true
			m.Primary = byte(p.integer(v, what+".primary", 0, mbus.AddrMaxPrimary)) //nolint:gosec // G115: integer keeps it in 0…250
		},
		"secondary": func(v *yaml.Node) { m.Secondary = p.secondary(v, what+".secondary") },
		"frames": func(v *yaml.Node) {
			hasFrames = true
			for i, f := range p.list(v, what+".frames") {
				m.Telegrams = append(m.Telegrams, p.frameFile(f, fmt.Sprintf("%s.frames[%d]", what, i)))
			}
		},
		"telegrams": func(v *yaml.Node) {
			hasTelegrams = true
			for i, f := range p.list(v, what+".telegrams") {
				m.Telegrams = append(m.Telegrams, p.telegram(f, fmt.Sprintf("%s.telegrams[%d]", what, i)))
			}
		},
		"delay": func(v *yaml.Node) { m.Delay = p.duration(v, what+".delay") },
		"key":   func(v *yaml.Node) { m.Key = p.key(v, what+".key") },
		"faults": func(v *yaml.Node) {
			for i, f := range p.list(v, what+".faults") {
				m.Faults = append(m.Faults, p.fault(f, fmt.Sprintf("%s.faults[%d]", what, i)))
			}
		},
	})
	if n.Kind != yaml.MappingNode {
		return m, false
	}
	if !hasPrimary {
		p.errorf(n, "%s: primary is missing", what)
	}
	if hasFrames == hasTelegrams {
		p.errorf(n, "%s: give either frames (files) or telegrams (hex), not both or neither", what)
	}
	if len(p.errs) > errs {
		return m, false
	}
	if m.Name == "" {
		m.Name = what
	}
	if _, err := newMeter(m); err != nil {
		p.errorf(n, "%s: %v", what, err)
		return m, false
	}
	return m, true
}

func (p *busParser) secondary(n *yaml.Node, what string) mbus.SecondaryAddress {
	s, ok := p.scalar(n, what)
	if !ok {
		return mbus.SecondaryAddress{}
	}
	sa, err := mbus.ParseSecondaryAddress(s)
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
		return sa
	}
	if sa.IsPattern() {
		p.errorf(n, "%s: %s has wildcards (F); a meter needs its full address", what, s)
	}
	return sa
}

// telegram reads and checks one telegram given as hex.
func (p *busParser) telegram(n *yaml.Node, what string) []byte {
	s, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	return p.check(n, what, s)
}

// key reads an AES-128 key in hex.
func (p *busParser) key(n *yaml.Node, what string) []byte {
	s, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	k, err := hex.DecodeString(s)
	if err != nil || len(k) != 16 {
		p.errorf(n, "%s: want 32 hex digits (an AES-128 key)", what)
		return nil
	}
	return k
}

// frameFile reads and checks one telegram file.
func (p *busParser) frameFile(n *yaml.Node, what string) []byte {
	path, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	data, err := fs.ReadFile(p.fsys, path)
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
		return nil
	}
	return p.check(n, what+" ("+path+")", string(data))
}

func (p *busParser) check(n *yaml.Node, what, text string) []byte {
	b, err := ParseHex(text)
	if err == nil {
		_, err = checkTelegram(b)
	}
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
		return nil
	}
	return b
}

func (p *busParser) fault(n *yaml.Node, what string) Fault {
	var f Fault
	var hasKind bool
	p.mapping(n, what, map[string]func(*yaml.Node){
		"kind": func(v *yaml.Node) {
			hasKind = true
			s, ok := p.scalar(v, what+".kind")
			if !ok {
				return
			}
			k, err := ParseFaultKind(s)
			if err != nil {
				p.errorf(v, "%s.kind: %v", what, err)
			}
			f.Kind = k
		},
		"every":       func(v *yaml.Node) { f.Every = p.integer(v, what+".every", 1, 1<<30) },
		"probability": func(v *yaml.Node) { f.Probability = p.probability(v, what+".probability") },
		"delay":       func(v *yaml.Node) { f.Delay = p.duration(v, what+".delay") },
		"times":       func(v *yaml.Node) { f.Times = p.integer(v, what+".times", 1, 1<<30) },
	})
	if n.Kind != yaml.MappingNode {
		return f
	}
	switch {
	case !hasKind:
		p.errorf(n, "%s: kind is missing", what)
	case f.Every > 0 && f.Probability > 0:
		p.errorf(n, "%s: give every or probability, not both", what)
	}
	return f
}

func (p *busParser) probability(n *yaml.Node, what string) float64 {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1 {
		p.errorf(n, "%s: want a number above 0 and at most 1, got %q", what, s)
		return 0
	}
	return v
}
