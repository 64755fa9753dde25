package addon

import (
	"fmt"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// addonManifests lists, relative to root, every file the Supervisor would
// read as an add-on manifest: config.json, config.yaml or config.yml at any
// depth. The .git directory is not part of the checkout's content.
func addonManifests(root string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		switch d.Name() {
		case "config.json", "config.yaml", "config.yml":
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	return found, err
}

func TestOnlyOneAddonManifest(t *testing.T) {
	found, err := addonManifests(rootPath(t, "."))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(found), "[config.yaml]"; got != want {
		t.Errorf("files named config.*: got %s, want %s (any other is taken for a second add-on)", got, want)
	}
}

func TestAddonManifestsFindsNested(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"config.yaml", "a/b/config.json", "testdata/config.yml", ".hidden/config.yaml", "config.yaml.bak", ".git/config"} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, err := addonManifests(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(found), "[.hidden/config.yaml a/b/config.json config.yaml testdata/config.yml]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// dockerInstruction is one Dockerfile instruction with its continuation
// lines joined.
type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func dockerInstructions(t *testing.T) []dockerInstruction {
	t.Helper()
	var out []dockerInstruction
	var cur strings.Builder
	for _, line := range lines(readRootFile(t, "Dockerfile")) {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// TestDockerfile checks what the Supervisor and run.sh rely on.
func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var (
		froms, labels, healthchecks, entrypoints, runs []string
		copies                                         = map[string]string{} // destination → source
		argDefaults                                    = map[string]string{}
	)
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "LABEL":
			labels = append(labels, in.args)
		case "HEALTHCHECK":
			healthchecks = append(healthchecks, in.args)
		case "ENTRYPOINT":
			entrypoints = append(entrypoints, in.args)
		case "RUN":
			runs = append(runs, in.args)
		case "COPY":
			f := strings.Fields(in.args)
			copies[f[len(f)-1]] = strings.Join(f[:len(f)-1], " ")
		case "ARG":
			if name, def, ok := strings.Cut(in.args, "="); ok {
				argDefaults[name] = def
			}
		}
	}
	if len(ins) == 0 || ins[0].cmd != "FROM" && ins[0].cmd != "ARG" {
		t.Fatalf("Dockerfile must start with FROM (or ARG before it)")
	}
	for _, f := range froms {
		if strings.Contains(f, "BUILD_FROM") {
			t.Errorf("FROM %s: the Supervisor no longer passes BUILD_FROM; name the image", f)
		}
	}
	if len(froms) < 2 {
		t.Errorf("FROM: got %d stages, want a build stage and a small final one", len(froms))
	}
	allLabels := strings.Join(labels, " ")
	for _, want := range []string{`io.hass.version="${BUILD_VERSION}"`, `io.hass.type="addon"`, `io.hass.arch="${BUILD_ARCH}"`} {
		if !strings.Contains(allLabels, want) {
			t.Errorf("LABEL: %s missing", want)
		}
	}
	version, _ := loadYAML(t, "config.yaml")["version"].(string)
	if got := argDefaults["BUILD_VERSION"]; got != version {
		t.Errorf("ARG BUILD_VERSION default: got %q, want config.yaml's version %q", got, version)
	}
	// The health check must hit the port ingress uses (8099, the web_port
	// default) on loopback, which the daemon always lets reach /health.
	if got, want := fmt.Sprint(healthchecks), "http://127.0.0.1:8099/health"; !strings.Contains(got, want) || len(healthchecks) != 1 {
		t.Errorf("HEALTHCHECK: got %s, want one on %s", got, want)
	}
	if got, want := fmt.Sprint(contractDefaults["web_port"]), "8099"; got != want {
		t.Errorf("web_port default: got %s, want %s (ingress port)", got, want)
	}
	if got, want := fmt.Sprint(entrypoints), `[["/run.sh"]]`; got != want {
		t.Errorf("ENTRYPOINT: got %s, want %s", got, want)
	}
	if got, want := copies["/run.sh"], "run.sh"; got != want {
		t.Errorf("COPY to /run.sh: got %q, want %q", got, want)
	}
	if got := copies["/usr/bin/mbus-gateway"]; !strings.HasPrefix(got, "--from=") {
		t.Errorf("COPY to /usr/bin/mbus-gateway: got %q, want the binary from the build stage", got)
	}
	if !strings.Contains(strings.Join(runs, "\n"), "packaging/build.sh") {
		t.Errorf("RUN: the binary must be built by packaging/build.sh (the flags .ci/build-like-docker.sh uses)")
	}
	for _, name := range []string{"build.yaml", "build.yml", "build.json"} {
		if _, err := os.Stat(rootPath(t, name)); err == nil {
			t.Errorf("%s exists: deprecated, the Dockerfile carries its own FROM", name)
		}
	}
	// Every build-context source must survive .dockerignore's allow-list.
	ignore := string(readRootFile(t, ".dockerignore"))
	for _, src := range copies {
		if strings.HasPrefix(src, "--from=") {
			continue
		}
		for _, s := range strings.Fields(src) {
			s = strings.TrimSuffix(s, "/")
			if !strings.Contains(ignore, "\n!"+s+"\n") && !strings.Contains(ignore, "\n!"+s+"/\n") {
				t.Errorf(".dockerignore: COPY source %s is not let through (want a line !%s)", s, s)
			}
		}
	}
}

// TestRunSh checks that run.sh is only the exec of the binary the Dockerfile
// installs, for /bin/sh (busybox in the image).
func TestRunSh(t *testing.T) {
	b := readRootFile(t, "run.sh")
	ls := lines(b)
	if got, want := ls[0], "#!/bin/sh"; got != want {
		t.Errorf("run.sh line 1: got %q, want %q", got, want)
	}
	var code []string
	for _, l := range ls[1:] {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			code = append(code, s)
		}
	}
	if got, want := fmt.Sprint(code), `[exec /usr/bin/mbus-gateway run "$@"]`; got != want {
		t.Errorf("run.sh commands: got %s, want %s", got, want)
	}
	st, err := os.Stat(rootPath(t, "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("run.sh: mode %v, want executable", st.Mode().Perm())
	}
}

func TestShellcheck(t *testing.T) {
	sc := requireTool(t, "shellcheck")
	// The container scripts must be POSIX sh (the image has busybox); the
	// CI scripts are bash, as their shebang says.
	for _, f := range []struct{ path, shell string }{
		{"run.sh", "sh"}, {"packaging/build.sh", "sh"},
		{".ci/build-like-docker.sh", "bash"}, {".ci/run", "bash"},
	} {
		out, err := exec.Command(sc, "--shell="+f.shell, rootPath(t, f.path)).CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck %s: %v\n%s", f.path, err, out)
		}
	}
}

// TestAppArmor checks that apparmor.txt holds one top-level profile (the
// Supervisor loads it in place of the default one) that lets the binary do
// its work.
func TestAppArmor(t *testing.T) {
	text := string(readRootFile(t, "apparmor.txt"))
	top := regexp.MustCompile(`(?m)^profile\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(top) != 1 {
		t.Fatalf("apparmor.txt: got %d top-level profiles, want 1", len(top))
	}
	if strings.Count(text, "{") != strings.Count(text, "}") {
		t.Errorf("apparmor.txt: unbalanced braces")
	}
	for _, want := range []string{
		"network inet tcp,",
		"network inet6 tcp,",
		"/usr/bin/mbus-gateway",
		"/run.sh",
		"/data/options.json r,",
		"/data/** rwk,",
		"/dev/ttyUSB* rw,",
		"/dev/serial/by-id/* r,",
		"/etc/ssl/",
		"/usr/share/zoneinfo/",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("apparmor.txt: no rule %q", want)
		}
	}
}

func TestIcons(t *testing.T) {
	tests := []struct {
		file       string
		minW, maxW int
		minH, maxH int
	}{
		{"icon.png", 128, 128, 128, 128},
		{"logo.png", 240, 260, 90, 110},
	}
	for _, tt := range tests {
		f, err := os.Open(rootPath(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if cfg.Width < tt.minW || cfg.Width > tt.maxW || cfg.Height < tt.minH || cfg.Height > tt.maxH {
			t.Errorf("%s: got %d×%d, want %d–%d × %d–%d", tt.file, cfg.Width, cfg.Height, tt.minW, tt.maxW, tt.minH, tt.maxH)
		}
	}
}

// TestDocsListEveryOption checks that DOCS.md has a table row for every
// option of the add-on (meter fields in the meters table, without prefix)
// and mentions the standalone-only ones.
func TestDocsListEveryOption(t *testing.T) {
	docs := string(readRootFile(t, "DOCS.md"))
	_, busTable, _ := strings.Cut(docs, "Each entry of `buses` has:")
	for _, p := range addonContractPaths() {
		row, table := p, docs
		if field, ok := strings.CutPrefix(p, "buses.meters."); ok {
			row = field
		} else if field, ok := strings.CutPrefix(p, "buses."); ok {
			row, table = field, busTable
		} else if field, ok := strings.CutPrefix(p, "meters."); ok {
			row = field
		}
		if !strings.Contains(table, "| `"+row+"` |") {
			t.Errorf("DOCS.md: no table row for option %s", p)
		}
	}
	for _, p := range standaloneOnly {
		if !strings.Contains(docs, "`"+p+"`") {
			t.Errorf("DOCS.md: standalone option %s not mentioned", p)
		}
	}
}

// TestWorkflows checks that the add-on workflows lint the add-on and build
// the image for both architectures on tags.
func TestWorkflows(t *testing.T) {
	addon := string(readRootFile(t, ".github/workflows/addon.yaml"))
	for _, want := range []string{"frenck/action-addon-linter", "shellcheck", ".ci/build-like-docker.sh"} {
		if !strings.Contains(addon, want) {
			t.Errorf("addon.yaml: %s not used", want)
		}
	}
	image := loadYAML(t, ".github/workflows/image.yaml")
	// YAML 1.1 readers take the key "on" for true; yaml.v3 keeps "on".
	on := mapAt(t, image, "on")
	push := mapAt(t, on, "push")
	if _, ok := push["tags"]; !ok || len(on) != 1 {
		t.Errorf("image.yaml: triggers %v, want pushes of tags only", on)
	}
	text := string(readRootFile(t, ".github/workflows/image.yaml"))
	for _, want := range []string{"docker/build-push-action", "docker/login-action", "push: true"} {
		if !strings.Contains(text, want) {
			t.Errorf("image.yaml: %q missing", want)
		}
	}
}
