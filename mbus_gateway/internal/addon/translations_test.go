package addon

import (
	"fmt"
	"sort"
	"testing"
)

var languages = []string{"en", "de"}

// translationProblems compares one translations/<lang>.yaml with the
// manifest: every option (and every field of a nested option) needs a name
// and a description, nothing may describe an option that does not exist,
// and every network port needs a description.
func translationProblems(manifest, tr map[string]any) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	schema, _ := manifest["schema"].(map[string]any)
	conf, _ := tr["configuration"].(map[string]any)

	// checkEntry checks one {name, description[, fields]} entry and returns
	// its fields.
	checkEntry := func(path string, v any) map[string]any {
		e, ok := v.(map[string]any)
		if !ok {
			add("%s: missing", path)
			return nil
		}
		for _, k := range []string{"name", "description"} {
			if s, _ := e[k].(string); s == "" {
				add("%s: no %s", path, k)
			}
		}
		fields, _ := e["fields"].(map[string]any)
		return fields
	}
	for _, key := range sortedKeys(schema) {
		fields := checkEntry(key, conf[key])
		nested := nestedSchema(schema[key])
		for _, sub := range sortedKeys(nested) {
			checkEntry(key+"."+sub, fields[sub])
		}
		for _, sub := range diff(sortedKeys(fields), sortedKeys(nested)) {
			add("%s.%s: translated but not an option", key, sub)
		}
	}
	for _, key := range diff(sortedKeys(conf), sortedKeys(schema)) {
		add("%s: translated but not an option", key)
	}

	ports, _ := manifest["ports"].(map[string]any)
	network, _ := tr["network"].(map[string]any)
	for _, p := range sortedKeys(ports) {
		if s, _ := network[p].(string); s == "" {
			add("network %s: no description", p)
		}
	}
	for _, p := range diff(sortedKeys(network), sortedKeys(ports)) {
		add("network %s: described but not a port", p)
	}
	sort.Strings(problems)
	return problems
}

// nestedSchema returns the fields of a dict option or of a list of dicts.
func nestedSchema(v any) map[string]any {
	if list, ok := v.([]any); ok && len(list) == 1 {
		v = list[0]
	}
	m, _ := v.(map[string]any)
	return m
}

func TestTranslationsComplete(t *testing.T) {
	manifest := loadYAML(t, "config.yaml")
	for _, lang := range languages {
		tr := loadYAML(t, "translations/"+lang+".yaml")
		for _, p := range translationProblems(manifest, tr) {
			t.Errorf("translations/%s.yaml: %s", lang, p)
		}
	}
}

// TestTranslationProblemsFire feeds a manifest and translations that differ
// in known ways and expects each difference to be reported.
func TestTranslationProblemsFire(t *testing.T) {
	manifest := map[string]any{
		"schema": map[string]any{
			"a":    "str?",
			"mqtt": map[string]any{"host": "str?", "port": "port?"},
			"list": []any{map[string]any{"x": "str"}},
		},
		"ports": map[string]any{"9105/tcp": nil},
	}
	tr := map[string]any{
		"configuration": map[string]any{
			"a":    map[string]any{"name": "A"},
			"mqtt": map[string]any{"name": "M", "description": "d", "fields": map[string]any{"host": map[string]any{"name": "H", "description": "d"}, "old": map[string]any{"name": "O", "description": "d"}}},
			"gone": map[string]any{"name": "G", "description": "d"},
		},
		"network": map[string]any{"8080/tcp": "x"},
	}
	got := translationProblems(manifest, tr)
	want := []string{
		"a: no description",
		"gone: translated but not an option",
		"list.x: missing",
		"list: missing",
		"mqtt.old: translated but not an option",
		"mqtt.port: missing",
		"network 8080/tcp: described but not a port",
		"network 9105/tcp: no description",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestTranslationsDiffer catches a translation file copied without being
// translated: every description must differ between the languages.
func TestTranslationsDiffer(t *testing.T) {
	en := mapAt(t, loadYAML(t, "translations/en.yaml"), "configuration")
	de := mapAt(t, loadYAML(t, "translations/de.yaml"), "configuration")
	for _, key := range sortedKeys(en) {
		e, _ := en[key].(map[string]any)
		d, _ := de[key].(map[string]any)
		if e["description"] != nil && e["description"] == d["description"] {
			t.Errorf("%s: German description equals the English one", key)
		}
		ef, _ := e["fields"].(map[string]any)
		df, _ := d["fields"].(map[string]any)
		for _, sub := range sortedKeys(ef) {
			es, _ := ef[sub].(map[string]any)
			ds, _ := df[sub].(map[string]any)
			if es["description"] != nil && es["description"] == ds["description"] {
				t.Errorf("%s.%s: German description equals the English one", key, sub)
			}
		}
	}
}
