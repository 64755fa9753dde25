package addon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitFile = "packaging/mbus-gateway.service"

// parseUnit reads a systemd unit into section → directive → values (a
// directive may repeat). Comments and blank lines are skipped.
func parseUnit(text string) (map[string]map[string][]string, error) {
	unit := map[string]map[string][]string{}
	var section string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if unit[section] == nil {
				unit[section] = map[string][]string{}
			}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is neither a section nor a directive", i+1, line)
			}
			unit[section][key] = append(unit[section][key], value)
		}
	}
	return unit, nil
}

// TestSystemdUnitDirectives checks the directives the standalone setup in
// DOCS.md promises: watchdog, resource limits, a throw-away user that may
// use serial ports, and a read-only system apart from the state directory.
func TestSystemdUnitDirectives(t *testing.T) {
	unit, err := parseUnit(string(readRootFile(t, unitFile)))
	if err != nil {
		t.Fatalf("%s: %v", unitFile, err)
	}
	svc := unit["Service"]
	tests := []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStart", "/usr/local/bin/mbus-gateway run --config /etc/mbus-gateway/options.yaml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"MemoryMax", "256M"},
		{"CPUQuota", "50%"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"ReadWritePaths", "/var/lib/mbus-gateway"},
		{"StateDirectory", "mbus-gateway"},
		{"NoNewPrivileges", "yes"},
		{"DynamicUser", "yes"},
		{"SupplementaryGroups", "dialout"},
		{"DevicePolicy", "closed"},
		{"DeviceAllow", "/dev/ttyUSB0 rw"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Restart", "on-failure"},
	}
	for _, tt := range tests {
		if got := strings.Join(svc[tt.key], " | "); got != tt.want {
			t.Errorf("[Service] %s: got %q, want %q", tt.key, got, tt.want)
		}
	}
	if len(svc["WatchdogSec"]) != 1 || svc["WatchdogSec"][0] == "0" {
		t.Errorf("[Service] WatchdogSec: got %v, want one non-zero value", svc["WatchdogSec"])
	}
	if got, want := strings.Join(unit["Install"]["WantedBy"], " "), "multi-user.target"; got != want {
		t.Errorf("[Install] WantedBy: got %q, want %q", got, want)
	}
	// The unit's state directory is where the example options put data_dir.
	ex := loadYAML(t, "packaging/options.example.yaml")
	if got, want := ex["data_dir"], "/var/lib/"+svc["StateDirectory"][0]; got != want {
		t.Errorf("options.example.yaml data_dir: got %v, want %v", got, want)
	}
}

func TestParseUnitRejects(t *testing.T) {
	for _, text := range []string{"Type=notify\n", "[Service]\nnot a directive\n"} {
		if _, err := parseUnit(text); err == nil {
			t.Errorf("parseUnit(%q): got no error, want one", text)
		}
	}
}

// TestSystemdAnalyzeVerify lets systemd check the unit. verify insists that
// ExecStart exists, so a copy of the unit points it at /bin/true; anything
// systemd prints (unknown directives, bad values) is a failure, since it
// reports those with exit status 0.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := requireTool(t, "systemd-analyze")
	text := strings.ReplaceAll(string(readRootFile(t, unitFile)), "ExecStart=/usr/local/bin/mbus-gateway ", "ExecStart=/bin/true ")
	unit := filepath.Join(t.TempDir(), "mbus-gateway.service")
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
