package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// statusPage finds the status page's port in the demo's printout.
var statusPage = regexp.MustCompile(`status page\s+http://127\.0\.0\.1:(\d+)/`)

// TestDemo runs `demo` on free ports, reads its printout, and waits until
// the status page shows at least six meters read; SIGINT ends it cleanly.
func TestDemo(t *testing.T) {
	p := start(t, hermeticEnv(), "demo", "--poll-interval", "5")
	var port int
	eventually(t, 20*time.Second, "the demo prints the status page URL", func() bool {
		m := statusPage.FindStringSubmatch(p.stdout.String())
		if m == nil {
			return false
		}
		port, _ = strconv.Atoi(m[1])
		return true
	})
	// The demo bus is paced at 2400 baud, as a wired bus: seven meters
	// take a few seconds.
	var st status
	eventually(t, 30*time.Second, "/status shows six meters read", func() bool {
		return getJSON(t, endpoint(port, "/status"), &st) == http.StatusOK && st.read() >= 6
	})
	if len(st.Meters) != 7 {
		t.Errorf("/status: got %d meters, want the 7 of the demo bus", len(st.Meters))
	}
	for _, m := range st.Meters {
		if !m.LastSuccess.IsZero() && (m.Name == "" || len(m.Values) == 0) {
			t.Errorf("meter %s: got name %q and %d values, want its name and values", m.Address, m.Name, len(m.Values))
		}
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d, want 0", code)
	}
}
