package hass

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// haTables are Home Assistant's sensor rules, copied from HA core into
// testdata/ha (see the README there): apart from the package's own tables,
// so that a mistake there shows up.
type haTables struct {
	DeviceClasses map[string]struct {
		Units        []*string `json:"units"`
		StateClasses []string  `json:"state_classes"`
	} `json:"device_classes"`
	Units []string `json:"units"`
}

// unitsWithoutEnum are the units the gateway lets stand without a device
// class although HA's unit enums lack them: reactive and apparent energy
// and power registers, which HA's statistics compile as plain numbers.
var unitsWithoutEnum = []string{"kvarh", "kVAh", "kVA"}

var haTablesOnce = sync.OnceValues(func() (*haTables, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "ha", "sensor-units.json"))
	if err != nil {
		return nil, err
	}
	var t haTables
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("sensor-units.json: %w", err)
	}
	return &t, nil
})

func loadHATables(t *testing.T) *haTables {
	t.Helper()
	tab, err := haTablesOnce()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// check reports why HA would refuse, or keep no sound statistics for, a
// sensor with this device class, state class and unit.
func (h *haTables) check(deviceClass, stateClass, unit string) error {
	switch stateClass {
	case "", measurement, "total", totalIncreasing:
	default:
		return fmt.Errorf("state class %q unknown to HA", stateClass)
	}
	if deviceClass == "" {
		if unit != "" && !slices.Contains(h.Units, unit) && !slices.Contains(unitsWithoutEnum, unit) {
			return fmt.Errorf("unit %q is none of HA's units", unit)
		}
		return nil
	}
	dc, ok := h.DeviceClasses[deviceClass]
	if !ok {
		return fmt.Errorf("device class %q not in the HA tables", deviceClass)
	}
	if !slices.ContainsFunc(dc.Units, func(u *string) bool { return (u == nil && unit == "") || (u != nil && *u == unit) }) {
		return fmt.Errorf("device class %s with unit %q: HA refuses it", deviceClass, unit)
	}
	if stateClass != "" && !slices.Contains(dc.StateClasses, stateClass) {
		return fmt.Errorf("device class %s with state class %s: HA allows %v", deviceClass, stateClass, dc.StateClasses)
	}
	return nil
}

// TestCorpusClassesMatchHA builds the discovery of every telegram of the
// libmbus corpus and checks each sensor's device class, state class and
// unit against Home Assistant's tables, and the rules for records of
// unknown meaning and historic values.
func TestCorpusClassesMatchHA(t *testing.T) {
	tab := loadHATables(t)
	files, err := filepath.Glob(filepath.Join("..", "mbus", "testdata", "libmbus", "*", "*.hex"))
	if err != nil || len(files) < 100 {
		t.Fatalf("libmbus corpus: %d files, %v", len(files), err)
	}
	sensors, telegrams := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := mbus.ParseHex(string(b))
		if err != nil {
			continue // a frame the corpus keeps as an error example
		}
		tg, err := mbus.ParseTelegram(raw)
		if err != nil || len(tg.Records) == 0 {
			continue
		}
		telegrams++
		addr := strconv.Itoa(int(tg.A))
		r := reading.Reading{Meter: reading.MeterID(tg.Header, addr), Address: addr, Time: readTime, Header: tg.Header, Records: tg.Records}
		msg, err := DeviceConfig(Options{}, r)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var cfg struct {
			Cmps map[string]map[string]any `json:"cmps"`
		}
		if err := json.Unmarshal(msg.Payload, &cfg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		recs := map[string]mbus.Record{}
		for _, rec := range tg.Records {
			if _, dup := recs[rec.Key]; !dup {
				recs[rec.Key] = rec
			}
		}
		for key, c := range cfg.Cmps {
			if c["p"] != "sensor" {
				continue
			}
			sensors++
			str := func(k string) string { s, _ := c[k].(string); return s }
			dc, sc, unit := str("device_class"), str("state_class"), str("unit_of_measurement")
			where := fmt.Sprintf("%s %s (%s, %s, %q)", filepath.Base(f), key, dc, sc, unit)
			if err := tab.check(dc, sc, unit); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			rec, ok := recs[key]
			if !ok {
				continue // the gateway's own entities
			}
			if unknownMeaning[rec.Quantity] || manufacturerMarked(rec) {
				if c["enabled_by_default"] != false || sc == totalIncreasing {
					t.Errorf("%s: a record of unknown meaning must be disabled and not total_increasing", where)
				}
			}
			if rec.Storage > 0 && (c["entity_category"] != "diagnostic" || sc != "") {
				t.Errorf("%s: historic value (storage %d) must be diagnostic without state class", where, rec.Storage)
			}
			if sc == totalIncreasing && rec.Value.Kind != mbus.KindNumber {
				t.Errorf("%s: total_increasing for a %v value", where, rec.Value.Kind)
			}
		}
	}
	if telegrams < 60 || sensors < 800 {
		t.Fatalf("checked %d sensors of %d telegrams: the corpus was not read", sensors, telegrams)
	}
	t.Logf("checked %d sensors of %d telegrams", sensors, telegrams)
}
