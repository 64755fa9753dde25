package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment variable that overrides
// an option: the option path in upper case with "_" for ".", e.g.
// MBUS_GATEWAY_POLL_INTERVAL, MBUS_GATEWAY_MQTT_HOST. MBUS_GATEWAY_WEB_ALLOW
// takes a comma-separated list, MBUS_GATEWAY_METERS a JSON list of meters.
// An empty variable counts as unset.
const EnvPrefix = "MBUS_GATEWAY_"

// Load reads the options file at path (JSON or YAML), applies the
// MBUS_GATEWAY_ environment overrides and defaults, and validates the
// result. The error joins every problem found, one per line.
func Load(path string) (*Options, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read options: %w", err)
	}
	return parse(data, path, os.Environ())
}

// Parse is Load for options already in memory, without environment
// overrides: it checks a file exactly as written. name is used in messages
// and tells JSON (*.json) from YAML.
func Parse(data []byte, name string) (*Options, error) {
	return parse(data, name, nil)
}

// parse works in layers. The file is decoded by readTree and its keys and
// nesting checked against the schema here, because viper is lenient there
// (it lowercases keys and accepts anything). Viper then stacks the checked
// file over the defaults of the schema tables and the environment over
// both. Last, every value is converted to its type by the decoder, which is
// strict again (a string is not an integer, except in an environment
// variable, where everything is text), and Validate checks ranges.
func parse(data []byte, name string, environ []string) (*Options, error) {
	tree, err := readTree(data, name)
	if err != nil {
		return nil, err
	}
	d := &decoder{env: map[string]string{}}
	file := d.checkFile(tree)
	env := d.checkEnv(environ)

	v := viper.New()
	for _, f := range options {
		v.SetDefault(f.key, f.def)
	}
	v.SetDefault("meters", []any{})
	if err := v.MergeConfigMap(file); err != nil {
		return nil, fmt.Errorf("parse options: %w", err)
	}
	for key, val := range env {
		v.Set(key, val)
	}

	o := &Options{}
	for _, f := range options {
		f.decode(d, f.key, v.Get(f.key), o)
	}
	d.decodeMeters(v.Get("meters"), o)

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

// maxProblems bounds the list of problems: beyond it, the file is most
// likely not an options file at all.
const maxProblems = 50

// decoder collects problems while it converts values, so that one run
// reports all of them.
type decoder struct {
	problems []error
	// paths of options that already have a problem; Validate's findings
	// about them would only repeat it.
	bad map[string]bool
	// env maps an option path to the environment variable that set it.
	env map[string]string
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
		case "meters":
			if list, ok := d.checkMeters(k, val); ok {
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

// checkMeters checks the list of meters. Entries that are not objects stay
// as nil so that later messages keep the user's indexes.
func (d *decoder) checkMeters(path string, val any) ([]any, bool) {
	list, ok := val.([]any)
	if !ok {
		d.wrongType(path, "a list", val)
		return nil, false
	}
	known := map[string]bool{}
	for _, f := range meterFields {
		known[f.key] = true
	}
	out := make([]any, len(list))
	for i, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			d.wrongType(index(path, i), "an object", e)
			continue
		}
		out[i] = d.checkObject(index(path, i)+".", obj, known)
	}
	return out, true
}

// checkEnv picks the MBUS_GATEWAY_ variables out of environ ("KEY=value"
// entries) and maps them to option paths.
func (d *decoder) checkEnv(environ []string) map[string]any {
	names := map[string]string{EnvPrefix + "METERS": "meters"}
	for _, f := range options {
		names[envName(f.key)] = f.key
	}
	out := map[string]any{}
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
		if val == "" {
			continue
		}
		d.env[key] = name
		if key != "meters" {
			out[key] = val
			continue
		}
		tree, err := readJSON([]byte(val), name)
		if err != nil {
			d.problem(key, "%s is not a JSON list of meters: %v", name, err)
			continue
		}
		if list, ok := d.checkMeters(key, tree); ok {
			out[key] = list
		}
	}
	return out
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// decodeMeters converts the checked list of meters; a meter without its own
// poll_interval or baudrate takes the global one.
func (d *decoder) decodeMeters(v any, o *Options) {
	list, _ := v.([]any) // checkMeters made sure of the type
	o.Meters = make([]Meter, 0, len(list))
	for i, e := range list {
		m := Meter{PollInterval: o.PollInterval, Baudrate: o.Baudrate}
		entry, ok := e.(map[string]any)
		if !ok {
			// Reported by checkMeters; the placeholder keeps the indexes
			// of the following meters as the user wrote them.
			o.Meters = append(o.Meters, m)
			continue
		}
		path := index("meters", i)
		for _, f := range meterFields {
			val, given := entry[f.key]
			switch {
			case given:
				f.decode(d, path+"."+f.key, val, &m)
			case f.def != nil:
				f.decode(d, path+"."+f.key, f.def, &m)
			case f.key == "address":
				d.problem(path+".address", `is missing: want a primary address "0" to "250" or a 16-hex-digit secondary address`)
			}
		}
		o.Meters = append(o.Meters, m)
	}
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
