package addon

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoRoot is the directory holding go.mod, found upwards from the test's
// working directory (the package directory).
var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
})

// rootPath joins rel (slash-separated) to the repository root.
func rootPath(t *testing.T, rel string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("repository root (go.mod) not found: %v", err)
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// readRootFile returns the content of a file of the repository.
func readRootFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// loadYAML decodes a YAML file of the repository into JSON-shaped values
// (map[string]any, []any, float64, string, bool, nil), the form both the
// JSON schema validator and the checks below work on.
func loadYAML(t *testing.T, rel string) map[string]any {
	t.Helper()
	m, err := decodeYAML(readRootFile(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return m
}

// decodeYAML decodes one YAML document holding a mapping into JSON-shaped
// values. Duplicate keys are errors (yaml.v3 rejects them).
func decodeYAML(b []byte) (map[string]any, error) {
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// requireTool returns the path of an external program. Missing, the test is
// skipped, except with CI=true, where the program is part of the test setup
// and its absence fails the test.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required with CI=true: %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// diff returns the elements of a missing from b, sorted.
func diff(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// mapAt returns m[key] as a mapping, or fails the test.
func mapAt(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q: got %T, want a mapping", key, m[key])
	}
	return v
}

// lines splits text into lines without the trailing newline.
func lines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}
