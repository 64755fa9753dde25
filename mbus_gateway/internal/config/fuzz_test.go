package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: reading options never panics, every problem is one non-empty
// line, and options that load also validate. Seeds are the fixtures.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"bad", "good", "migrate"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"options.json", "options.yaml"} {
			o, err := Parse(data, name)
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					if strings.TrimSpace(line) == "" {
						t.Fatalf("%s: empty problem line in %q", name, err)
					}
				}
				continue
			}
			if err := o.Validate(); err != nil {
				t.Fatalf("%s: loaded options fail Validate: %v", name, err)
			}
		}
		_, _, _ = Migrate(data, "old.json")
	})
}
