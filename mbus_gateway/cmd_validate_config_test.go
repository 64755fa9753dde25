package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const configTestdata = "internal/config/testdata"

// runCmd runs one subcommand function with captured output.
func runConfigCmd(t *testing.T, cmd func(context.Context, []string, io.Reader, io.Writer, io.Writer) int, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cmd(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateConfig(t *testing.T) {
	good := filepath.Join(configTestdata, "good", "options.json")
	bad := filepath.Join(configTestdata, "bad", "wrong-type.json")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"ok", []string{good}, 0, good + ": ok\n", ""},
		{"problems", []string{bad}, 1, "",
			"unknown option \"mqtt.pasword\" (did you mean \"mqtt.password\"?)\nmqtt.port: want an integer, got \"abc\"\n"},
		{"missing file", []string{"no/such/options.json"}, 1, "",
			"mbus-gateway: open no/such/options.json: no such file or directory\n"},
		{"no argument", nil, 2, "", "usage: mbus-gateway validate-config FILE\n" +
			"Checks an options file (JSON or YAML); prints each problem on its own line.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runConfigCmd(t, cmdValidateConfig, "", tt.args...)
			if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("got %d, stdout %q, stderr %q\nwant %d, stdout %q, stderr %q",
					code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestValidateConfigWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "options.yaml")
	if err := os.WriteFile(path, []byte("serial_port: /dev/ttyUSB0\nexpire_after: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runConfigCmd(t, cmdValidateConfig, "", path)
	wantErr := "warning: expire_after: 5 s is shorter than poll_interval (15 s): its entities will turn unavailable between reads\n"
	if code != 0 || stdout != path+": ok\n" || stderr != wantErr {
		t.Errorf("got %d, %q, %q; want 0, %q, %q", code, stdout, stderr, path+": ok\n", wantErr)
	}
}
