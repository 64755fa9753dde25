package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateConfig(t *testing.T) {
	old := filepath.Join(configTestdata, "migrate", "old-v1-tcp.json")
	want, err := os.ReadFile(filepath.Join(configTestdata, "migrate", "old-v1-tcp.options.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(configTestdata, "migrate", "old-v1-tcp.notes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wantNotes := "note: " + strings.ReplaceAll(strings.TrimSuffix(string(notes), "\n"), "\n", "\nnote: ") + "\n"

	code, stdout, stderr := runConfigCmd(t, cmdMigrateConfig, "", old)
	if code != 0 || stdout != string(want) || stderr != wantNotes {
		t.Errorf("stdout: got %d, %q\nwant 0, %q\nstderr: got %q\nwant %q", code, stdout, want, stderr, wantNotes)
	}

	// -o after the file, into a file only the owner can read; the result validates.
	out := filepath.Join(t.TempDir(), "options.yaml")
	code, stdout, _ = runConfigCmd(t, cmdMigrateConfig, "", old, "-o", out)
	if code != 0 || stdout != "" {
		t.Fatalf("got %d, stdout %q; want 0 and nothing on stdout", code, stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("file: got %q, want %q", got, want)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v (%v), want 0600: the file holds the broker password", fi.Mode().Perm(), err)
	}
	if code, stdout, _ := runConfigCmd(t, cmdValidateConfig, "", out); code != 0 || stdout != out+": ok\n" {
		t.Errorf("validate-config on the result: got %d, %q", code, stdout)
	}

	// -o over a world-readable file: the result is a new file only the
	// owner can read, nothing else is left in the directory.
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runConfigCmd(t, cmdMigrateConfig, "", "-o", out, old); code != 0 {
		t.Fatalf("over a 0644 file: got %d, %s", code, stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("over a 0644 file: got mode %v (%v), want 0600: the file holds the broker password", fi.Mode().Perm(), err)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != string(want) {
		t.Errorf("over a 0644 file: got %q (%v), want %q", got, err, want)
	}
	if entries, err := os.ReadDir(filepath.Dir(out)); err != nil || len(entries) != 1 {
		t.Errorf("got %d entries (%v) in the directory, want only %s", len(entries), err, filepath.Base(out))
	}
	// A directory that cannot be written to is an error, not a partial file.
	if code, _, stderr := runConfigCmd(t, cmdMigrateConfig, "", "-o", filepath.Join(t.TempDir(), "missing", "o.yaml"), old); code != 1 || !strings.Contains(stderr, "missing") {
		t.Errorf("into a missing directory: got %d, %q; want 1 and a message naming it", code, stderr)
	}
}

// TestMigrateConfigDroppedMeters: a meter that cannot be converted makes
// exit code 1 and a message naming it; the rest is written for the user
// to fix.
func TestMigrateConfigDroppedMeters(t *testing.T) {
	old := filepath.Join(configTestdata, "migrate", "old-v1.json")
	want, err := os.ReadFile(filepath.Join(configTestdata, "migrate", "old-v1.options.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runConfigCmd(t, cmdMigrateConfig, "", old)
	if code != 1 || stdout != string(want) {
		t.Errorf("got %d, stdout %q; want 1 and %q", code, stdout, want)
	}
	for _, line := range []string{
		"migrate: could not convert:\n",
		"known_devices[2]: address 5 repeats known_devices[0]: keep one of them\n",
		`known_devices[3]: address "251" is out of range: primary addresses go from 0 to 250` + "\n",
	} {
		if !strings.Contains(stderr, line) {
			t.Errorf("stderr %q lacks %q", stderr, line)
		}
	}
}

func TestMigrateConfigStdinAndErrors(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		wantCode    int
		wantStdout  string
		wantStderr  string
	}{
		{"stdin", `{"mbus_port": "/dev/ttyUSB0", "mqtt_broker": "10.0.0.2"}`, []string{"-"}, 0,
			"# Options converted from stdin (older gateway, v1).\nserial_port: /dev/ttyUSB0\nmqtt:\n  host: 10.0.0.2\n", ""},
		{"needs fixing", `{"mqtt_broker": "10.0.0.2"}`, []string{"-"}, 1,
			"# Options converted from stdin (older gateway, v1).\nmqtt:\n  host: 10.0.0.2\n",
			"migrate: the converted options need fixing:\n" +
				"serial_port: set serial_port (a device such as /dev/ttyUSB0) or tcp_address (host:port of an M-Bus-to-TCP converter)\n"},
		{"not old", `{"serial_port": "/dev/ttyUSB0"}`, []string{"-"}, 1, "",
			"migrate: stdin is already in the options format: check it with validate-config\n"},
		{"two files", "", []string{"a", "b"}, 2, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runConfigCmd(t, cmdMigrateConfig, tt.stdin, tt.args...)
			if tt.name == "two files" && strings.HasPrefix(stderr, "usage: mbus-gateway migrate-config OLD [-o OUT]\n") {
				stderr = "" // the usage text, checked by its first line
			}
			if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("got %d, stdout %q, stderr %q\nwant %d, stdout %q, stderr %q",
					code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
