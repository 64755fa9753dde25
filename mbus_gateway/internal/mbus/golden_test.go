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

// TestGolden compares our JSON for every frame in testdata/libmbus and
// testdata/frames with testdata/golden/<dir>/<name>.json (a <name>.key
// next to a frame is its meter's key). Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	for _, path := range allHexFiles(t) {
		dir := filepath.Base(filepath.Dir(path))
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(dir+"/"+name, func(t *testing.T) {
			var res goldenResult
			// A frame of an encrypted meter comes with its key.
			var key []byte
			if text, err := os.ReadFile(strings.TrimSuffix(path, ".hex") + ".key"); err == nil {
				if key, err = ParseHex(string(text)); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := ParseHex(string(mustRead(t, path)))
			if err == nil {
				res.Telegram, err = ParseTelegramKey(raw, key)
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
