package e2e

// A meter that encrypts its telegrams (security mode 5) is read with the
// key of its options; one without a configured key fails its reads with
// "encrypted, key needed" where the user looks, and the key itself never
// leaves the options.

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// TestEncryptedMeter: two meters encrypt with the same key; the options
// give it for the meter at 1 only. The meter at 1 is published decrypted;
// the meter at 2 shows "encrypted, key needed" on /status and in the
// metrics, publishes nothing, and does not take the bus down. The key is
// in no log line (at debug level), no status, no metric, no page and no
// message.
func TestEncryptedMeter(t *testing.T) {
	const key = "5B2A0C8E91D4F36077A1B2C3D4E5F607"
	k, err := hex.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	withKey, noKey := identityMeter(t, 1, "70000001", 1001), identityMeter(t, 2, "70000002", 2002)
	withKey.Key, noKey.Key = k, k
	web := freePort(t)
	r := newFaultRig(t, sim.Setup{Meters: []sim.Meter{withKey, noKey}}, map[string]any{
		"meters":    []map[string]any{{"address": "1", "key": key}, {"address": "2"}},
		"log_level": "debug",
		"web_port":  web,
		"web_allow": []string{"127.0.0.1"},
	})
	r.start()

	const decrypted = "abb_70000001"
	r.rec.WaitCount("mbus/"+decrypted+"/reading", 2, time.Minute)
	if got := values(r, "mbus/"+decrypted+"/volume"); !slices.Equal(got, []string{"1.001"}) {
		t.Errorf("volume of the meter with its key: got %q, want only 1.001", got)
	}

	var st struct {
		Bus    struct{ State string }
		Meters []struct {
			Address   string `json:"address"`
			LastError string `json:"last_error"`
			Failures  int    `json:"failures"`
		}
	}
	eventually(t, time.Minute, "/status shows the meter at 2 failing for want of a key", func() bool {
		getJSON(t, endpoint(r.port, "/status"), &st)
		for _, m := range st.Meters {
			if m.Address == "2" && strings.Contains(m.LastError, "encrypted, key needed") && m.Failures >= 2 {
				return true
			}
		}
		return false
	})
	if st.Bus.State != "up" {
		t.Errorf("bus state %q with a meter that needs a key; want up", st.Bus.State)
	}
	if n := r.metric(`mbus_polls_total{meter="addr_2",result="key_needed"}`); n < 2 {
		t.Errorf("polls of the meter at 2 counted as key_needed: got %v, want at least 2", n)
	}
	if n := r.metric(`mbus_polls_total{meter="abb_70000001",result="ok"}`); n < 2 {
		t.Errorf("good polls of the meter at 1: got %v, want at least 2", n)
	}
	for _, m := range r.rec.Messages("") {
		if strings.Contains(m.Topic, "70000002") {
			t.Errorf("published for the meter without its key: %s = %q", m.Topic, m.Payload)
		}
	}
	var broker strings.Builder
	for _, m := range r.rec.Messages("") {
		broker.WriteString(m.Topic + " " + string(m.Payload) + "\n")
	}
	places := map[string]string{
		"broker":   broker.String(),
		"/status":  r.get("/status"),
		"/metrics": r.get("/metrics"),
	}
	for _, path := range []string{"/", "/status"} {
		code, body := request(t, "GET", endpoint(web, path), nil)
		if code != 200 {
			t.Fatalf("page %s: got %d", path, code)
		}
		places["page "+path] = body
	}
	stop(t, r.gw)
	places["log"] = r.gw.stdout.String() + r.gw.stderr.String()
	if !strings.Contains(places["log"], "encrypted, key needed") {
		t.Error("the log does not say that the meter at 2 needs a key")
	}
	for where, text := range places {
		if strings.Contains(strings.ToUpper(text), key) {
			t.Errorf("the key appears in the %s", where)
		}
	}
}
