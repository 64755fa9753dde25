package addon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const linterSchemaURL = "https://example.invalid/addon-linter/config.schema.json"

// linterSchema loads testdata/addon-linter/config.schema.json: once as the
// compiled validator, once as plain data (for the "default" values).
func linterSchema(t *testing.T) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "addon-linter", "config.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(linterSchemaURL, doc); err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	sch, err := c.Compile(linterSchemaURL)
	if err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	var plain map[string]any
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	return sch, plain
}

// validateManifest runs the linter's JSON schema on a manifest.
func validateManifest(sch *jsonschema.Schema, manifest map[string]any) error {
	js, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// linterRules returns what the add-on linter reports beyond its JSON schema
// (its warnings included), one sentence per problem, sorted.
func linterRules(manifest, schema map[string]any) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	truthy := func(key string) bool { b, _ := manifest[key].(bool); return b }

	if _, ok := manifest["watchdog"]; ok {
		add("watchdog is obsolete: use a Docker HEALTHCHECK")
	}
	if _, ok := manifest["webui"]; ok && truthy("ingress") {
		add("webui and ingress exclude each other")
	}
	if port, ok := manifest["ingress_port"].(float64); ok && port == 0 && !truthy("host_network") {
		add("ingress_port 0 needs host_network")
	}
	if truthy("full_access") {
		for _, k := range []string{"devices", "uart", "usb", "gpio"} {
			if v, ok := manifest[k]; ok && v != false {
				add("full_access makes %s pointless", k)
			}
		}
	}
	if _, ok := manifest["auto_uart"]; ok {
		add("auto_uart is obsolete: use uart")
	}
	if devices, ok := manifest["devices"].([]any); ok {
		for _, d := range devices {
			if s, _ := d.(string); strings.Contains(s, ":") {
				add("devices entry %q: give the path only, without ':'", s)
			}
		}
	}
	if _, ok := manifest["codenotary"]; ok {
		add("codenotary is obsolete")
	}
	props, _ := schema["properties"].(map[string]any)
	for _, key := range sortedKeys(manifest) {
		prop, _ := props[key].(map[string]any)
		def, hasDefault := prop["default"]
		if hasDefault && reflect.DeepEqual(manifest[key], def) {
			add("%s: %v is the default; leave the key out", key, def)
		}
	}
	if arch, ok := manifest["arch"].([]any); ok {
		for _, a := range arch {
			switch a {
			case "armhf", "armv7", "i386":
				add("arch %v is no longer supported by Home Assistant", a)
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func TestManifestPassesLinterSchema(t *testing.T) {
	sch, _ := linterSchema(t)
	if err := validateManifest(sch, loadYAML(t, "config.yaml")); err != nil {
		t.Errorf("config.yaml: %v", err)
	}
}

func TestManifestPassesLinterRules(t *testing.T) {
	_, schema := linterSchema(t)
	if got := linterRules(loadYAML(t, "config.yaml"), schema); len(got) > 0 {
		t.Errorf("config.yaml: %s", strings.Join(got, "; "))
	}
}

// TestLinterChecksFire breaks a copy of the real manifest in one way each and
// expects the schema or a rule to notice, so the two tests above cannot pass
// by checking nothing.
func TestLinterChecksFire(t *testing.T) {
	sch, schema := linterSchema(t)
	tests := []struct {
		name   string
		change func(m map[string]any)
		want   string // substring of the rule problem; "" = the JSON schema must fail
	}{
		{"watchdog", func(m map[string]any) { m["watchdog"] = "http://[HOST]:[PORT:8099]/health" }, "watchdog"},
		{"webui with ingress", func(m map[string]any) { m["webui"] = "http://[HOST]:[PORT:8099]/" }, "webui"},
		{"ingress_port 0", func(m map[string]any) { m["ingress_port"] = 0.0 }, "host_network"},
		{"default ingress_port", func(m map[string]any) { m["ingress_port"] = 8099.0 }, "ingress_port: 8099 is the default"},
		{"default boot", func(m map[string]any) { m["boot"] = "auto" }, "boot: auto is the default"},
		{"default init", func(m map[string]any) { m["init"] = true }, "init: true is the default"},
		{"full_access with uart", func(m map[string]any) { m["full_access"] = true; m["uart"] = true }, "full_access makes uart"},
		{"auto_uart", func(m map[string]any) { m["auto_uart"] = true }, "auto_uart"},
		{"device with mode", func(m map[string]any) { m["devices"] = []any{"/dev/ttyUSB0:/dev/ttyUSB0:rwm"} }, "without ':'"},
		{"codenotary", func(m map[string]any) { m["codenotary"] = "x@example.org" }, "codenotary"},
		{"armv7", func(m map[string]any) { m["arch"] = []any{"aarch64", "armv7"} }, "armv7"},
		{"unknown key", func(m map[string]any) { m["ingress_url"] = "/" }, ""},
		{"no slug", func(m map[string]any) { delete(m, "slug") }, ""},
		{"bad service", func(m map[string]any) { m["services"] = []any{"mqtt:require"} }, ""},
		{"bad arch", func(m map[string]any) { m["arch"] = []any{"riscv64"} }, ""},
		{"bad map", func(m map[string]any) { m["map"] = []any{"data:rw"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadYAML(t, "config.yaml")
			tt.change(m)
			if tt.want == "" {
				if err := validateManifest(sch, m); err == nil {
					t.Errorf("JSON schema: got valid, want an error")
				}
				return
			}
			got := strings.Join(linterRules(m, schema), "; ")
			if !strings.Contains(got, tt.want) {
				t.Errorf("got problems %q, want one containing %q", got, tt.want)
			}
		})
	}
}

// finalImage returns the image of the Dockerfile's last FROM.
func finalImage(t *testing.T) string {
	t.Helper()
	var image string
	for _, in := range dockerInstructions(t) {
		if in.cmd == "FROM" {
			image = strings.Fields(in.args)[0]
		}
	}
	return image
}

// TestManifestProject checks the choices this add-on makes on top of what
// the linter requires.
func TestManifestProject(t *testing.T) {
	m := loadYAML(t, "config.yaml")
	str := func(key string) string { s, _ := m[key].(string); return s }

	if got, want := str("slug"), "mbus_gateway"; got != want {
		t.Errorf("slug: got %q, want %q", got, want)
	}
	if got := str("version"); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(got) {
		t.Errorf("version: got %q, want MAJOR.MINOR.PATCH", got)
	}
	if got, want := fmt.Sprint(m["arch"]), "[aarch64 amd64]"; got != want {
		t.Errorf("arch: got %s, want %s (the architectures Home Assistant supports)", got, want)
	}
	if got, want := fmt.Sprint(m["services"]), "[mqtt:need]"; got != want {
		t.Errorf("services: got %s, want %s", got, want)
	}
	if m["ingress"] != true {
		t.Errorf("ingress: got %v, want true", m["ingress"])
	}
	if got := str("panel_icon"); !strings.HasPrefix(got, "mdi:") {
		t.Errorf("panel_icon: got %q, want an mdi: icon", got)
	}
	if str("panel_title") == "" {
		t.Errorf("panel_title: missing")
	}
	// The Supervisor API paths the daemon uses (/services/mqtt,
	// /addons/self/info) are open to every add-on; more rights are not needed.
	for _, key := range []string{"hassio_api", "homeassistant_api", "hassio_role", "full_access", "privileged", "host_network", "uart", "devices", "docker_api"} {
		if _, ok := m[key]; ok {
			t.Errorf("%s: set, want absent", key)
		}
	}
	// A prebuilt image is named per architecture; without one the
	// Supervisor builds the Dockerfile on the device.
	if image, ok := m["image"]; ok && !strings.Contains(fmt.Sprint(image), "{arch}") {
		t.Errorf("image: got %v, want a name with {arch}", image)
	}
	// Docker's init runs as PID 1 unless the image brings s6 (HA base images).
	s6 := strings.HasPrefix(finalImage(t), "ghcr.io/home-assistant/")
	if init, ok := m["init"]; s6 && init != false || !s6 && ok {
		t.Errorf("init: got %v (set: %v) for final image %s, want false only with an s6 base image", init, ok, finalImage(t))
	}

	ports := mapAt(t, m, "ports")
	if got, want := fmt.Sprint(ports), "map[9105/tcp:<nil>]"; got != want {
		t.Errorf("ports: got %s, want %s (metrics, off until the user maps it)", got, want)
	}
	desc := mapAt(t, m, "ports_description")
	if got, want := sortedKeys(desc), sortedKeys(ports); !reflect.DeepEqual(got, want) {
		t.Errorf("ports_description: got %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(contractDefaults["metrics_port"]), "9105"; got != want {
		t.Errorf("metrics_port default: got %s, want %s (the published port)", got, want)
	}

	// The serial adapter comes through the option type, not through
	// devices/uart: the user picks it and gets exactly that one.
	paths := manifestSchemaPaths(t)
	if got, want := paths["serial_port"], "device(subsystem=tty)?"; got != want {
		t.Errorf("schema.serial_port: got %q, want %q", got, want)
	}

	// The database and its write-ahead log hold undelivered readings:
	// backup_exclude must not match them.
	if excl, ok := m["backup_exclude"].([]any); ok {
		for _, p := range excl {
			for _, name := range []string{"mbus-gateway.db", "mbus-gateway.db-wal", "store.sqlite", "store.sqlite-wal", "data.db-journal"} {
				if ok, err := filepath.Match(fmt.Sprint(p), name); err != nil || ok {
					t.Errorf("backup_exclude %q: matches %s (err %v)", p, name, err)
				}
			}
		}
	}
}
