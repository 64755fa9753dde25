package hass

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// BridgeID is the device identifier of the gateway itself; meters name it
// as their via_device.
const BridgeID = "mbus_bridge"

// Keys of the diagnostic entities taken from the reading rather than from a
// record. A record with the same key wins.
const (
	keyLastRead     = "last_read"
	keyAccessNumber = "access_number"
)

// deviceConfig is the payload of homeassistant/device/<id>/config.
type deviceConfig struct {
	Device     device               `json:"dev"`
	Origin     origin               `json:"o"`
	Components map[string]component `json:"cmps"`
	QoS        int                  `json:"qos"`
}

type device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	SerialNumber string   `json:"serial_number,omitempty"`
	SWVersion    string   `json:"sw_version,omitempty"`
	ViaDevice    string   `json:"via_device,omitempty"`
}

type origin struct {
	Name string `json:"name"`
	SW   string `json:"sw,omitempty"`
	URL  string `json:"url,omitempty"`
}

type availability struct {
	Topic string `json:"topic"`
}

// component is one entity of a device-based discovery payload.
type component struct {
	Platform         string         `json:"p"`
	Name             string         `json:"name"`
	UniqueID         string         `json:"unique_id"`
	DefaultEntityID  string         `json:"default_entity_id"`
	StateTopic       string         `json:"state_topic,omitempty"`
	CommandTopic     string         `json:"command_topic,omitempty"`
	PayloadPress     string         `json:"payload_press,omitempty"`
	Options          []string       `json:"options,omitempty"`
	Icon             string         `json:"icon,omitempty"`
	DeviceClass      string         `json:"device_class,omitempty"`
	StateClass       string         `json:"state_class,omitempty"`
	Unit             string         `json:"unit_of_measurement,omitempty"`
	Precision        *int           `json:"suggested_display_precision,omitempty"`
	EntityCategory   string         `json:"entity_category,omitempty"`
	EnabledByDefault *bool          `json:"enabled_by_default,omitempty"`
	PayloadOn        string         `json:"payload_on,omitempty"`
	PayloadOff       string         `json:"payload_off,omitempty"`
	Availability     []availability `json:"availability,omitempty"`
	AvailabilityMode string         `json:"availability_mode,omitempty"`
	ExpireAfter      int            `json:"expire_after,omitempty"`
	// AttributesTopic and AttributesTemplate give the entity attributes
	// from a JSON message.
	AttributesTopic    string `json:"json_attributes_topic,omitempty"`
	AttributesTemplate string `json:"json_attributes_template,omitempty"`
}

// entity is one state topic of a meter with its class: a record or a
// value from the reading's header.
type entity struct {
	key   string
	name  string
	class entityClass
	value string
	// unreadable marks a number the meter sent with error digits: its
	// sensor keeps the last good value.
	unreadable bool
}

// DeviceConfig builds the retained device-based discovery message of the
// meter that produced r, with one sensor per record and diagnostics for the
// time of the read and the access number; every one of them is available
// only while both the bridge and the meter are online. The gateway's
// per-meter entities (a "Read now" button, the last successful read and
// the consecutive failures) depend on the bridge alone. It fails when the meter
// id, a record key or a prefix is not a safe topic level.
func DeviceConfig(o Options, r reading.Reading) (Message, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Message{}, err
	}
	if err := checkLevel(r.Meter); err != nil {
		return Message{}, fmt.Errorf("hass: meter %q: %w", r.Meter, err)
	}
	ents, err := entities(r)
	if err != nil {
		return Message{}, err
	}
	avail := []availability{
		{Topic: topic(o.TopicPrefix, "bridge", "state")},
		{Topic: topic(o.TopicPrefix, r.Meter, "availability")},
	}
	meterPart := entityPart(r.Meter)
	cfg := deviceConfig{
		Device:     meterDevice(o, r),
		Origin:     origin{Name: cleanText(o.OriginName, maxNameLen), SW: cleanText(o.OriginSW, maxNameLen), URL: cleanText(o.OriginURL, maxTextLen)},
		Components: make(map[string]component, len(ents)),
		QoS:        1,
	}
	for _, e := range ents {
		id := "mbus_" + meterPart + "_" + entityPart(e.key)
		c := component{
			Platform:         "sensor",
			Name:             e.name,
			UniqueID:         id,
			DefaultEntityID:  "sensor." + id,
			StateTopic:       topic(o.TopicPrefix, r.Meter, e.key),
			DeviceClass:      e.class.DeviceClass,
			StateClass:       e.class.StateClass,
			Unit:             e.class.Unit,
			Availability:     avail,
			AvailabilityMode: "all",
			ExpireAfter:      o.ExpireAfter,
		}
		if e.class.Precision >= 0 {
			c.Precision = &e.class.Precision
		}
		if e.class.Diagnostic {
			c.EntityCategory = "diagnostic"
		}
		if e.class.Disabled {
			c.EnabledByDefault = new(false)
		}
		if e.class.StateClass == totalIncreasing {
			// While the guard holds a value back, the sensor's
			// attributes show it (reason, raw, published).
			c.AttributesTopic = topic(o.TopicPrefix, r.Meter, "reading")
			c.AttributesTemplate = guardAttributes(e.key)
		}
		cfg.Components[e.key] = c
	}
	keys := make(map[string]bool, len(ents))
	for _, e := range ents {
		keys[e.key] = true
	}
	for key, c := range meterExtras(o, r.Meter, keys) {
		cfg.Components[key] = c
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return Message{}, fmt.Errorf("hass: device config: %w", err)
	}
	return Message{Topic: discoveryTopic(o, r.Meter), Payload: payload, Retain: true}, nil
}

// RemoveDevice is the retained empty message that deletes a meter's device
// and entities in Home Assistant. For a meter id that is not a safe topic
// level it returns the zero Message, whose empty Topic no client publishes.
func RemoveDevice(o Options, meter string) Message {
	o, err := o.withDefaults()
	if err != nil || checkLevel(meter) != nil {
		return Message{}
	}
	return Message{Topic: discoveryTopic(o, meter), Payload: []byte{}, Retain: true}
}

func discoveryTopic(o Options, id string) string {
	return topic(o.DiscoveryPrefix, "device", id, "config")
}

// entities lists the state topics of r in record order, first record of a
// key winning, then the header diagnostics. Records without a value
// (fillers, idle fields) are left out.
func entities(r reading.Reading) ([]entity, error) {
	var ents []entity
	var errs []error
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, rec := range r.Records {
		if rec.Value.Kind == mbus.KindNone || seen[rec.Key] {
			continue
		}
		if err := checkLevel(rec.Key); err != nil {
			errs = append(errs, fmt.Errorf("hass: meter %s: record key %q: %w", r.Meter, rec.Key, err))
			continue
		}
		seen[rec.Key] = true
		class := classify(r.Header.Medium, rec)
		name := recordName(rec)
		if class.UnitText != "" {
			name = cleanText(name+" ["+class.UnitText+"]", maxNameLen)
		}
		if names[name] {
			// Two records that differ only in ways the name does not
			// show: the key tells them apart.
			name = cleanText(name+" ("+rec.Key+")", maxNameLen)
		}
		names[name] = true
		e := entity{key: rec.Key, name: name, class: class, value: stateText(rec), unreadable: unreadableNumber(rec)}
		if g, ok := r.Guard[rec.Key]; ok {
			// The guard held the value back or confirmed a reset: the
			// sensor shows what it decided, the reading what was read.
			e.value, e.unreadable = strconv.FormatFloat(g.Published, 'f', -1, 64), false
		}
		ents = append(ents, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !seen[keyLastRead] && !r.Time.IsZero() {
		ents = append(ents, entity{
			key: keyLastRead, name: "Last read",
			class: entityClass{DeviceClass: "timestamp", Precision: -1, Diagnostic: true},
			value: r.Time.UTC().Format("2006-01-02T15:04:05Z07:00"),
		})
	}
	if !seen[keyAccessNumber] && r.Header.ID != "" {
		ents = append(ents, entity{
			key: keyAccessNumber, name: "Access number",
			class: entityClass{Precision: -1, Diagnostic: true, Disabled: true},
			value: strconv.Itoa(int(r.Header.AccessNumber)),
		})
	}
	return ents, nil
}

// meterDevice describes the meter for the device registry.
func meterDevice(o Options, r reading.Reading) device {
	h := r.Header
	mf := manufacturerName(h.Manufacturer)
	kind := mediumName(h.Medium)
	d := device{
		Identifiers: []string{"mbus_" + entityPart(r.Meter)},
		ViaDevice:   BridgeDeviceID(o),
	}
	if h.ID != "" {
		d.Manufacturer = cleanText(mf, maxNameLen)
		d.Model = kind + " (version " + strconv.Itoa(int(h.Version)) + ")"
		d.SerialNumber = cleanText(h.ID, maxNameLen)
		d.SWVersion = strconv.Itoa(int(h.Version))
	}
	switch {
	case strings.TrimSpace(r.Name) != "":
		d.Name = cleanText(r.Name, maxNameLen)
	case h.ID != "":
		d.Name = cleanText(mf+" "+kind+" "+h.ID, maxNameLen)
	default:
		d.Name = cleanText("M-Bus meter at address "+r.Address, maxNameLen)
	}
	if d.Name == "" {
		d.Name = r.Meter
	}
	return d
}

// recordName is the entity name of a record: the quantity in words, with
// function, tariff, storage and subunit where they are not the defaults,
// e.g. "Energy (tariff 1, storage 2)".
func recordName(rec mbus.Record) string {
	var quals []string
	switch rec.Function {
	case mbus.FuncMaximum:
		quals = append(quals, "maximum")
	case mbus.FuncMinimum:
		quals = append(quals, "minimum")
	case mbus.FuncValueDuringError:
		quals = append(quals, "during error")
	}
	if rec.Tariff > 0 {
		quals = append(quals, "tariff "+strconv.FormatUint(uint64(rec.Tariff), 10))
	}
	if rec.Storage > 0 {
		quals = append(quals, "storage "+strconv.FormatUint(rec.Storage, 10))
	}
	if rec.Subunit > 0 {
		quals = append(quals, "subunit "+strconv.FormatUint(uint64(rec.Subunit), 10))
	}
	name := quantityWords(rec.Quantity)
	if name == "" {
		name = quantityWords(rec.Key)
	}
	if len(quals) > 0 {
		name += " (" + strings.Join(quals, ", ") + ")"
	}
	return cleanText(name, maxNameLen)
}

// wordFixes spells the tokens of snake_case quantities that are not plain
// lower-case words.
var wordFixes = map[string]string{
	"hca": "HCA", "l1": "L1", "l2": "L2", "l3": "L3", "n": "N", "q1": "Q1", "q2": "Q2",
	"q3": "Q3", "q4": "Q4", "rf": "RF", "m3": "m³", "kwh": "kWh", "gj": "GJ", "kw": "kW",
	"obis": "OBIS", "id": "ID",
}

// quantityNames are names that word-by-word spelling gets wrong.
var quantityNames = map[string]string{
	"units_for_hca": "HCA units",
	"date_time":     "Date and time",
}

// quantityWords turns "flow_temperature" into "Flow temperature" and
// "units_for_hca" into "HCA units".
func quantityWords(q string) string {
	if n, ok := quantityNames[q]; ok {
		return n
	}
	words := strings.FieldsFunc(q, func(r rune) bool { return r == '_' })
	for i, w := range words {
		if f, ok := wordFixes[w]; ok {
			words[i] = f
		}
	}
	s := strings.Join(words, " ")
	if s == "" {
		return ""
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	return s
}

// manufacturers maps EN 62056-21 / DLMS flag codes to the names people know
// the manufacturers by.
var manufacturers = map[string]string{
	"ABB": "ABB", "ACW": "Itron", "AMT": "Aquametro", "APA": "Apator",
	"BMT": "BMETERS", "DME": "Diehl Metering", "EFE": "Engelmann", "ELS": "Elster",
	"ELV": "Elvaco", "EMH": "EMH metering", "EMU": "EMU Elektronik", "FIN": "Finder",
	"GAV": "Carlo Gavazzi", "GWF": "GWF", "HYD": "Diehl Metering (Hydrometer)",
	"ITW": "Itron", "KAM": "Kamstrup", "LGB": "Landis+Gyr", "LUG": "Landis+Gyr",
	"NZR": "NZR", "QDS": "Qundis", "REL": "Relay", "SBC": "Saia-Burgess Controls",
	"SEN": "Sensus", "SIE": "Siemens", "SON": "Sontex",
	"TCH": "Techem", "ZRI": "Zenner", "ZRM": "Minol",
}

// manufacturerName gives the full name for known codes, else the code.
func manufacturerName(code string) string {
	if n, ok := manufacturers[code]; ok {
		return n
	}
	return code
}

// mediumWords names the media whose snake_case name does not read well.
var mediumWords = map[string]string{
	"heat_outlet":         "heat meter",
	"heat_inlet":          "heat meter (inlet)",
	"cooling_outlet":      "cooling meter",
	"cooling_inlet":       "cooling meter (inlet)",
	"heat_cooling":        "heat/cooling meter",
	"heat_cost_allocator": "heat cost allocator",
	"electricity":         "electricity meter",
	"gas":                 "gas meter",
	"water":               "water meter",
	"warm_water":          "warm water meter",
	"hot_water":           "hot water meter",
	"cold_water":          "cold water meter",
	"dual_register_water": "dual register water meter",
	"oil":                 "oil meter",
	"steam":               "steam meter",
	"compressed_air":      "compressed air meter",
}

func mediumName(m mbus.Medium) string {
	s := m.String()
	if w, ok := mediumWords[s]; ok {
		return w
	}
	return strings.ReplaceAll(s, "_", " ")
}

// stateText is the state of rec as its sensor shows it. Identifiers keep
// the digits the meter sent, leading zeros included: a fabrication number
// 00123456 is not the number 123456.
func stateText(rec mbus.Record) string {
	if rec.Value.Kind != mbus.KindNumber || !identification[rec.Quantity] {
		return rec.Value.String()
	}
	n := rec.Value.Num
	if n < 0 || n != math.Trunc(n) || n >= 1e18 {
		return rec.Value.String()
	}
	s := strconv.FormatUint(uint64(n), 10)
	if digits := bcdDigits(rec); len(s) < digits {
		s = strings.Repeat("0", digits-len(s)) + s
	}
	return s
}

// bcdDigits is the number of digits of a BCD data field (EN 13757-3,
// table 4: codings 0x9 to 0xC and 0xE hold 2, 4, 6, 8 and 12 digits), 0
// for other codings.
func bcdDigits(rec mbus.Record) int {
	if len(rec.DIF) == 0 {
		return 0
	}
	switch rec.DIF[0] & 0x0F {
	case 0x9:
		return 2
	case 0xA:
		return 4
	case 0xB:
		return 6
	case 0xC:
		return 8
	case 0xE:
		return 12
	}
	return 0
}

// guardAttributes is the template that picks the guard's decision on key
// out of a reading message (reading.Reading.Guard): {} when the value was
// passed on as read, which clears the attributes again.
func guardAttributes(key string) string {
	k, _ := json.Marshal(key) // a string always marshals
	return "{{ (value_json.guard | default({})).get(" + string(k) + ", {}) | tojson }}"
}
