package mbus

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenResult is what a golden file holds: our decoding of one frame.
type goldenResult struct {
	Telegram *Telegram `json:"telegram"`
	Error    string    `json:"error,omitempty"`
}

// TestGolden compares our JSON for every frame in testdata/libmbus with
// testdata/golden/<dir>/<name>.json. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	for _, path := range allHexFiles(t) {
		dir := filepath.Base(filepath.Dir(path))
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(dir+"/"+name, func(t *testing.T) {
			var res goldenResult
			raw, err := ParseHex(string(mustRead(t, path)))
			if err == nil {
				res.Telegram, err = ParseTelegram(raw)
			}
			if err != nil {
				res.Error = err.Error()
			}
			got, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata/golden", dir, name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update after checking):\ngot:\n%s", golden, got)
			}
		})
	}
}
