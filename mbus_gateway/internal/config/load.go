package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment variable that overrides
// an option: the option path in upper case with "_" for ".", e.g.
// MBUS_GATEWAY_POLL_INTERVAL, MBUS_GATEWAY_MQTT_HOST. MBUS_GATEWAY_WEB_ALLOW
// takes a comma-separated list, MBUS_GATEWAY_METERS and MBUS_GATEWAY_BUSES
// a JSON list. An empty variable counts as unset.
const EnvPrefix = "MBUS_GATEWAY_"

// Load reads the options file at path (JSON or YAML), applies the
// MBUS_GATEWAY_ environment overrides and defaults, and validates the
// result. The error joins every problem found, one per line.
func Load(path string) (*Options, error) {
	d := newDecoder(path)
	v := d.viper()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, readError(err)
	}
	d.useEnvironment(v, os.Environ())
	return d.options(v)
}

// Parse is Load for options already in memory, without environment
// overrides: it checks a file exactly as written. name is used in messages
// and tells JSON (*.json) from YAML.
func Parse(data []byte, name string) (*Options, error) {
	d := newDecoder(name)
	v := d.viper()
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, readError(err)
	}
	return d.options(v)
}

// viper returns a viper that loads the file through the decoder's strict
// codec (see Decode), with the defaults of the schema tables under it.
//
// Viper stacks the layers (environment over file over defaults); the
// checks that viper does not make are ours: the codec rejects unknown keys
// and duplicates before viper lowercases keys, and every value is
// converted to its type by the decoder (a string is not an integer, except
// in an environment variable, where everything is text). Validate checks
// ranges last.
func (d *decoder) viper() *viper.Viper {
	v := viper.NewWithOptions(viper.WithDecoderRegistry(d))
	// Every format name reaches the same codec, which tells JSON from YAML
	// by the file's name and content; the type only has to be one viper
	// knows.
	v.SetConfigType("yaml")
	for _, f := range options {
		v.SetDefault(f.key, f.def)
	}
	v.SetDefault("meters", []any{})
	return v
}

// Decoder gives viper the decoder's codec, whatever the format.
func (d *decoder) Decoder(string) (viper.Decoder, error) { return d, nil }

// Decode reads an options file for viper: it keeps the known keys and
// reports the others; a file that is not JSON or YAML is the error.
func (d *decoder) Decode(data []byte, into map[string]any) error {
	tree, err := readTree(data, d.name)
	if err != nil {
		return err
	}
	maps.Copy(into, d.checkFile(tree))
	return nil
}

var _ viper.DecoderRegistry = (*decoder)(nil)

// readError unwraps the codec's error from viper's; other errors are
// about reading the file.
func readError(err error) error {
	var parse viper.ConfigParseError
	if errors.As(err, &parse) {
		return parse.Unwrap()
	}
	return fmt.Errorf("read options: %w", err)
}

// useEnvironment lets the MBUS_GATEWAY_ variables of environ override the
// file, and reports the variables that name no option.
func (d *decoder) useEnvironment(v *viper.Viper, environ []string) {
	v.SetEnvPrefix(strings.TrimSuffix(EnvPrefix, "_"))
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	names := map[string]string{envName("meters"): "meters", envName("buses"): "buses"}
	for _, f := range options {
		names[envName(f.key)] = f.key
	}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, ok := names[name]
		if !ok {
			d.add(name, &UnknownOptionError{Path: name, Env: true, Suggestion: suggest(name, mapKeys(names))})
			continue
		}
		if val != "" {
			d.env[key] = name
		}
	}
}

// options converts what viper holds into Options and validates them.
func (d *decoder) options(v *viper.Viper) (*Options, error) {
	meters, buses := d.list(v, "meters", meterKeys()), d.list(v, "buses", busKeys())
	o := &Options{}
	for _, f := range options {
		f.decode(d, f.key, v.Get(f.key), o)
	}
	o.Meters = d.decodeMeters("meters", meters, o.PollInterval, o.Baudrate)
	o.Buses = d.decodeBuses(buses, o)

	problems := d.problems
	for _, p := range o.problems() {
		if !d.reported(p.Path) && (p.other == "" || !d.reported(p.other)) {
			problems = append(problems, p)
		}
	}
	if len(problems) > maxProblems {
		more := len(problems) - maxProblems
		problems = append(problems[:maxProblems], fmt.Errorf("… and %d more problems", more))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return o, nil
}

// list returns the checked entries of the list option key: from the file
// (checked by Decode) or from its environment variable, a JSON list.
func (d *decoder) list(v *viper.Viper, key string, known entryCheck) []any {
	val := v.Get(key)
	name := d.env[key]
	text, fromEnv := val.(string)
	if !fromEnv || name == "" {
		list, _ := val.([]any) // Decode made sure of the type
		return list
	}
	tree, err := readJSON([]byte(text), name)
	if err != nil {
		d.problem(key, "%s is not a JSON list of %s: %v", name, key, err)
		return nil
	}
	list, _ := d.checkList(key, tree, known)
	return list
}

// maxProblems bounds the list of problems: beyond it, the file is most
// likely not an options file at all.
const maxProblems = 50

// decoder collects problems while it converts values, so that one run
// reports all of them.
type decoder struct {
	// name is the file's name, for messages.
	name     string
	problems []error
	// paths of options that already have a problem; Validate's findings
	// about them would only repeat it.
	bad map[string]bool
	// env maps an option path to the environment variable that set it.
	env map[string]string
}

func newDecoder(name string) *decoder {
	return &decoder{name: name, env: map[string]string{}}
}

func (d *decoder) problem(path, format string, args ...any) {
	d.add(path, &OptionError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) add(path string, err error) {
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[path] = true
	d.problems = append(d.problems, err)
}

// reported tells whether path, or an option containing it, has a problem.
func (d *decoder) reported(path string) bool {
	for p := path; p != ""; {
		if d.bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return false
}

func (d *decoder) wrongType(path, want string, v any) {
	from := ""
	if name := d.env[path]; name != "" {
		from = " (from " + name + ")"
	}
	d.problem(path, "want %s, got %s%s", want, describe(v), from)
}

// checkFile keeps the known keys of the file tree and reports the others;
// nulls count as "not given". The result is safe to hand to viper.
func (d *decoder) checkFile(tree map[string]any) map[string]any {
	top, mqttKeys := topLevel()
	out := map[string]any{}
	for _, k := range sortedKeys(tree) {
		val := tree[k]
		if !top[k] {
			d.add(k, &UnknownOptionError{Path: k, Suggestion: suggest(k, mapKeys(top))})
			continue
		}
		if val == nil {
			continue
		}
		switch k {
		case "mqtt":
			obj, ok := val.(map[string]any)
			if !ok {
				d.wrongType(k, "an object", val)
				continue
			}
			out[k] = d.checkObject("mqtt.", obj, mqttKeys)
		case "meters", "buses":
			known := meterKeys()
			if k == "buses" {
				known = busKeys()
			}
			if list, ok := d.checkList(k, val, known); ok {
				out[k] = list
			}
		default:
			out[k] = val
		}
	}
	return out
}

// checkObject keeps the known keys of obj; prefix ("mqtt.", "meters[0].")
// names it in messages.
func (d *decoder) checkObject(prefix string, obj map[string]any, known map[string]bool) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(obj) {
		if !known[k] {
			d.add(prefix+k, &UnknownOptionError{Path: prefix + k, Suggestion: suggestPath(prefix, k, known)})
			continue
		}
		if obj[k] != nil {
			out[k] = obj[k]
		}
	}
	return out
}

// suggestPath suggests a key of a nested object, written like the unknown one.
func suggestPath(prefix, k string, known map[string]bool) string {
	s := suggest(k, mapKeys(known))
	if s == "" {
		return ""
	}
	if strings.HasSuffix(prefix, "].") {
		return s // "meters[0].addrss" → "address": the index is obvious
	}
	return prefix + s
}

// entryCheck says what an entry of a list option may hold: its keys, and
// the nested lists among them with what their entries may hold.
type entryCheck struct {
	keys  map[string]bool
	lists map[string]entryCheck
}

func meterKeys() entryCheck { return entryCheck{keys: entryKeys(meterFields)} }

func busKeys() entryCheck {
	return entryCheck{keys: entryKeys(busFields, "meters"), lists: map[string]entryCheck{"meters": meterKeys()}}
}

// checkList checks a list option. Entries that are not objects stay as nil
// so that later messages keep the user's indexes.
func (d *decoder) checkList(path string, val any, known entryCheck) ([]any, bool) {
	list, ok := val.([]any)
	if !ok {
		d.wrongType(path, "a list", val)
		return nil, false
	}
	out := make([]any, len(list))
	for i, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			d.wrongType(index(path, i), "an object", e)
			continue
		}
		entry := d.checkObject(index(path, i)+".", obj, known.keys)
		for _, k := range sortedKeys(known.lists) {
			if sub, given := entry[k]; given {
				if l, ok := d.checkList(index(path, i)+"."+k, sub, known.lists[k]); ok {
					entry[k] = l
				} else {
					delete(entry, k)
				}
			}
		}
		out[i] = entry
	}
	return out, true
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// decodeEntry fills t from one checked entry of a list option: a field
// that is given takes its value, one with a default the default; one
// without either keeps what t inherited, unless it is required.
func decodeEntry[T any](d *decoder, path string, entry map[string]any, fields []field[T], required map[string]string, t *T) {
	for _, f := range fields {
		val, given := entry[f.key]
		switch {
		case given:
			f.decode(d, path+"."+f.key, val, t)
		case f.def != nil:
			f.decode(d, path+"."+f.key, f.def, t)
		case required[f.key] != "":
			d.problem(path+"."+f.key, "%s", required[f.key])
		}
	}
}

// decodeMeters converts a checked list of meters; a meter without its own
// poll_interval or baudrate takes poll and baud.
func (d *decoder) decodeMeters(path string, list []any, poll time.Duration, baud int) []Meter {
	meters := make([]Meter, 0, len(list))
	for i, e := range list {
		m := Meter{PollInterval: poll, Baudrate: baud}
		// An entry that is not an object was reported by checkList; the
		// placeholder keeps the indexes of the following meters as the
		// user wrote them.
		if entry, ok := e.(map[string]any); ok {
			decodeEntry(d, index(path, i), entry, meterFields, meterRequired, &m)
		}
		meters = append(meters, m)
	}
	return meters
}

// decodeBuses converts the checked list of buses; a bus takes baudrate,
// scan_on_start and scan_mode from the top level unless it sets its own.
// No buses give nil: the single-bus options are used.
func (d *decoder) decodeBuses(list []any, o *Options) []Bus {
	if len(list) == 0 {
		return nil
	}
	buses := make([]Bus, 0, len(list))
	for i, e := range list {
		b := Bus{Baudrate: o.Baudrate, ScanOnStart: o.ScanOnStart, ScanMode: o.ScanMode}
		if entry, ok := e.(map[string]any); ok {
			path := index("buses", i)
			decodeEntry(d, path, entry, busFields, busRequired, &b)
			meters, _ := entry["meters"].([]any)
			b.Meters = d.decodeMeters(path+".meters", meters, o.PollInterval, b.Baudrate)
		}
		buses = append(buses, b)
	}
	return buses
}

func (d *decoder) str(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(path, "a string", v)
	}
	return s, ok
}

func (d *decoder) boolean(path string, v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if d.env[path] != "" {
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, true
			}
		}
	}
	d.wrongType(path, "true or false", v)
	return false, false
}

// integer converts whole numbers in any of the forms the decoders give;
// text only counts when it came from the environment. |n| ≤ limit; unit
// names the unit in messages (" (seconds)") or is empty.
func (d *decoder) integer(path string, v any, limit int64, unit string) (int64, bool) {
	var n int64
	ok := false
	switch x := v.(type) {
	case json.Number:
		n, ok = parseInt(x.String())
	case string:
		if d.env[path] != "" {
			n, ok = parseInt(strings.TrimSpace(x))
		}
	case int:
		n, ok = int64(x), true
	case int64:
		n, ok = x, true
	case uint64:
		n, ok = math.MaxInt64, true // only values beyond int64 decode as uint64
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			n, ok = int64(x), true
		}
	}
	switch {
	case !ok:
		d.wrongType(path, "an integer", v)
	case n > limit:
		d.problem(path, "%s is too large: want at most %d%s", describe(v), limit, unit)
		ok = false
	case n < -limit:
		d.problem(path, "%s is too small", describe(v))
		ok = false
	}
	return n, ok
}

func parseInt(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// stringList converts a list of strings; from the environment it splits a
// comma-separated value.
func (d *decoder) stringList(path string, v any) ([]string, bool) {
	if s, ok := v.(string); ok && d.env[path] != "" {
		var out []string
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		return out, true
	}
	list, ok := v.([]any)
	if !ok {
		d.wrongType(path, "a list of strings", v)
		return nil, false
	}
	out := make([]string, 0, len(list))
	good := true
	for i, e := range list {
		s, ok := d.str(index(path, i), e)
		good = good && ok
		out = append(out, s)
	}
	return out, good
}

// describe shows a value in a message the way the user wrote it.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case json.Number, bool, int, int64, uint64:
		return fmt.Sprint(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprintf("a value of type %T", v)
}

// kind names the type of a value without showing it, for values that are
// secret.
func kind(v any) string {
	if _, isNum := numberText(v); isNum {
		return "a number"
	}
	switch v.(type) {
	case bool:
		return "true or false"
	case string:
		return "a string"
	}
	return describe(v) // null, a list, an object: no value in them to show
}

// numberText returns the text of a number, and whether v is one.
func numberText(v any) (string, bool) {
	switch v.(type) {
	case json.Number, int, int64, uint64, float64:
		return describe(v), true
	}
	return "", false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := mapKeys(m)
	slices.Sort(keys)
	return keys
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
