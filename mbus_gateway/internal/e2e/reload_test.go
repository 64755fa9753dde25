package e2e

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// reloadStatus is the part of GET /status the reload test reads.
type reloadStatus struct {
	Meters []struct {
		Address         string    `json:"address"`
		Name            string    `json:"name"`
		IntervalSeconds float64   `json:"interval_seconds"`
		LastSuccess     time.Time `json:"last_success"`
	} `json:"meters"`
}

// summary lists "address name interval" of each meter, and whether all
// were read.
func (s reloadStatus) summary() (meters []string, allRead bool) {
	allRead = true
	for _, m := range s.Meters {
		meters = append(meters, strings.TrimSpace(m.Address+" "+m.Name)+" "+time.Duration(m.IntervalSeconds*float64(time.Second)).String())
		allRead = allRead && !m.LastSuccess.IsZero()
	}
	return meters, allRead
}

// postJSON posts body to url and returns the status code.
func postJSON(t *testing.T, url, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestRunReload: SIGHUP re-reads the options file and applies the log
// level, the poll interval and the meters at once: a new meter is read, a
// removed one no longer, the others keep running with the new interval,
// and a meter added on the status page stays.
func TestRunReload(t *testing.T) {
	broker := mosquittotest.Start(t)
	bus := startBus(t)
	dir := t.TempDir()
	first := map[string]any{
		"meters":    []map[string]any{{"address": "1"}, {"address": "3", "name": "Gas"}},
		"web_allow": []string{"127.0.0.1"},
	}
	path, metrics := gatewayOptions(t, dir, bus, broker, first)
	text := readOptions(t, path)
	webPort := int(text["web_port"].(float64))
	p := start(t, hermeticEnv(), "run", "--config", path)
	eventually(t, 15*time.Second, "the gateway answers", func() bool {
		return getJSON(t, endpoint(metrics, "/health"), nil) == http.StatusOK
	})
	if code := postJSON(t, endpoint(webPort, "/meters"), `{"address": "5", "name": "Added"}`); code != http.StatusCreated {
		t.Fatalf("adding a meter on the status page: got status %d, want 201", code)
	}
	// A fresh document each time: decoding into the last one would keep
	// fields that the new one omits.
	shows := func(want ...string) func() bool {
		return func() bool {
			var st reloadStatus
			if getJSON(t, endpoint(metrics, "/status"), &st) != http.StatusOK {
				return false
			}
			got, read := st.summary()
			return read && slices.Equal(got, want)
		}
	}
	eventually(t, 15*time.Second, "/status shows meters 1, 3 and 5 read", shows("1 5s", "3 Gas 5s", "5 Added 5s"))

	// Same ports and data; meter 3 goes, meter 2 comes, another level
	// and interval.
	text["meters"] = []map[string]any{{"address": "1"}, {"address": "2", "name": "Water"}}
	text["log_level"] = "debug"
	text["poll_interval"] = 7
	writeOptions(t, dir, text)
	p.signal(syscall.SIGHUP)

	eventually(t, 15*time.Second, "/status shows meters 1, 2 and 5 read", shows("1 7s", "2 Water 7s", "5 Added 7s"))
	eventually(t, 5*time.Second, "the reload is logged", func() bool {
		return strings.Contains(p.stderr.String(), "options reloaded")
	})
	log := p.stderr.String()
	for _, want := range []string{
		`applied=["log_level","poll_interval","meters: 1 added, 1 removed, 2 changed"]`,
		"meter removed", "DBG",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log after SIGHUP: no %q in\n%s", want, log)
		}
	}
	if strings.Contains(log, "need_restart") {
		t.Errorf("log after SIGHUP: nothing needs a restart, got\n%s", log)
	}
	stop(t, p)
}
