package addon

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// imagePlan is what .ci/image-plan.sh tells the image workflow to build.
type imagePlan struct {
	Version string
	Matrix  struct {
		Include []struct{ Arch, Platform, Runner, Image string }
	}
}

// runImagePlan runs .ci/image-plan.sh with env and returns its plan, or
// its error output when it fails.
func runImagePlan(t *testing.T, env ...string) (imagePlan, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "github-output")
	cmd := exec.Command("bash", rootPath(t, ".ci/image-plan.sh"))
	cmd.Env = append(os.Environ(), append(env, "GITHUB_OUTPUT="+out)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return imagePlan{}, stderr.String(), err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p imagePlan
	for _, line := range lines(b) {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "version":
			p.Version = v
		case "matrix":
			if err := json.Unmarshal([]byte(v), &p.Matrix); err != nil {
				t.Fatalf("matrix %s: %v", v, err)
			}
		}
	}
	return p, stderr.String(), nil
}

// TestImageWorkflowPublishesWhatManifestNames: config.yaml names a prebuilt
// image per arch; the workflow builds exactly those, for every arch of the
// manifest, tagged with its version, and refuses a tag that differs.
func TestImageWorkflowPublishesWhatManifestNames(t *testing.T) {
	manifest := loadYAML(t, "config.yaml")
	image, _ := manifest["image"].(string)
	if !strings.HasPrefix(image, "ghcr.io/mbus-gateway/") || !strings.Contains(image, "{arch}") {
		t.Fatalf("config.yaml image: %q, want ghcr.io/mbus-gateway/…{arch}", image)
	}
	version, _ := manifest["version"].(string)
	var arches []string
	for _, a := range manifest["arch"].([]any) {
		arches = append(arches, a.(string))
	}

	plan, stderr, err := runImagePlan(t, "GITHUB_REF_NAME=v"+version, "GITHUB_REPOSITORY_OWNER=mbus-gateway")
	if err != nil {
		t.Fatalf("image-plan: %v: %s", err, stderr)
	}
	if plan.Version != version {
		t.Errorf("plan version %q, want config.yaml's %q", plan.Version, version)
	}
	var planned []string
	platforms := map[string]string{"amd64": "linux/amd64", "aarch64": "linux/arm64"}
	for _, m := range plan.Matrix.Include {
		planned = append(planned, m.Arch)
		if want := strings.ReplaceAll(image, "{arch}", m.Arch); m.Image != want {
			t.Errorf("arch %s: image %q, want %q", m.Arch, m.Image, want)
		}
		if m.Platform != platforms[m.Arch] || m.Runner == "" {
			t.Errorf("arch %s: platform %q on %q, want %q", m.Arch, m.Platform, m.Runner, platforms[m.Arch])
		}
	}
	if !slices.Equal(planned, arches) {
		t.Errorf("planned arches %v, want config.yaml's %v", planned, arches)
	}

	workflow := string(readRootFile(t, ".github/workflows/image.yaml"))
	for _, want := range []string{
		"bash .ci/image-plan.sh",
		"matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}",
		"${{ matrix.image }}:${{ needs.plan.outputs.version }}",
		"BUILD_VERSION=${{ needs.plan.outputs.version }}",
		"BUILD_ARCH=${{ matrix.arch }}",
		"platforms: ${{ matrix.platform }}",
	} {
		if !strings.Contains(workflow, want) {
			t.Errorf("image.yaml: %q missing: the published images must come from the plan", want)
		}
	}
	if strings.Count(workflow, "tags: |") != 1 || strings.Contains(workflow, "ghcr.io/") {
		t.Errorf("image.yaml names images of its own besides the plan's")
	}

	for _, bad := range []struct{ env, want string }{
		{"GITHUB_REF_NAME=v" + version + ".1", "does not match config.yaml version"},
		{"GITHUB_REPOSITORY_OWNER=someone-else", "is not under ghcr.io/someone-else/"},
	} {
		if _, stderr, err := runImagePlan(t, bad.env); err == nil || !strings.Contains(stderr, bad.want) {
			t.Errorf("image-plan with %s: err %v, stderr %q; want a failure saying %q", bad.env, err, stderr, bad.want)
		}
	}
}

// TestMinimumHomeAssistant: the manifest asks for a Home Assistant that
// understands the discovery the gateway publishes: device-based configs
// (2024.12) with default_entity_id (2025.10).
func TestMinimumHomeAssistant(t *testing.T) {
	v, _ := loadYAML(t, "config.yaml")["homeassistant"].(string)
	var year, month, patch int
	if n, err := fmt.Sscanf(v, "%d.%d.%d", &year, &month, &patch); n != 3 || err != nil {
		t.Fatalf("config.yaml homeassistant: %q, want a version YYYY.M.P", v)
	}
	if year*100+month < 202510 {
		t.Errorf("config.yaml homeassistant: %s, want at least 2025.10.0 (default_entity_id in discovery)", v)
	}
}
