package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// seqName matches NAME_N.hex, one telegram of a multi-telegram meter.
var seqName = regexp.MustCompile(`^(.+)_([0-9]+)\.hex$`)

// LoadFramesDir makes a meter of each telegram file (*.hex) in dir. Files
// are taken in name order; meter k (from 1) gets primary address k and the
// secondary address of its first telegram's long header.
//
// Two or more files NAME_1.hex, NAME_2.hex, … (same NAME, numbered) form
// one meter NAME whose telegrams are sent in number order, as a meter
// that needs several REQ_UD2 to send all its records. A lone NAME_1.hex
// is a meter of its own called NAME_1. Other files are ignored.
func LoadFramesDir(dir string) (Setup, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Setup{}, fmt.Errorf("frames: %w", err)
	}
	// Group numbered files by NAME; every other file is a group of one.
	groups := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".hex") {
			continue
		}
		key := name
		if m := seqName.FindStringSubmatch(name); m != nil {
			key = m[1] + "_"
		}
		groups[key] = append(groups[key], name)
	}
	var meters [][]string
	for _, files := range groups {
		if len(files) > 1 {
			slices.SortFunc(files, func(a, b string) int { return seqNumber(a) - seqNumber(b) })
		}
		meters = append(meters, files)
	}
	slices.SortFunc(meters, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	if len(meters) == 0 {
		return Setup{}, fmt.Errorf("frames: %s: no .hex files", dir)
	}
	if len(meters) > mbus.AddrMaxPrimary {
		return Setup{}, fmt.Errorf("frames: %s: %d meters, but primary addresses end at %d", dir, len(meters), mbus.AddrMaxPrimary)
	}
	s := Setup{Options: Options{ResponseDelay: DefaultResponseDelay}}
	for i, g := range meters {
		m := Meter{Name: strings.TrimSuffix(g[0], ".hex"), Primary: byte(i + 1)}
		if len(g) > 1 {
			m.Name = seqName.FindStringSubmatch(g[0])[1]
		}
		for _, file := range g {
			text, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return Setup{}, fmt.Errorf("frames: %w", err)
			}
			t, err := ParseHex(string(text))
			if err == nil {
				_, err = checkTelegram(t)
			}
			if err != nil {
				return Setup{}, fmt.Errorf("frames: %s: %w", file, err)
			}
			m.Telegrams = append(m.Telegrams, t)
		}
		if _, err := newMeter(m); err != nil {
			return Setup{}, fmt.Errorf("frames: %s: %w", dir, err)
		}
		s.Meters = append(s.Meters, m)
	}
	return s, nil
}

// seqNumber is N of NAME_N.hex.
func seqNumber(file string) int {
	n, _ := strconv.Atoi(seqName.FindStringSubmatch(file)[2])
	return n
}
