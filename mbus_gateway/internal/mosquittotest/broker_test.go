package mosquittotest

import (
	"errors"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRetainedSurvivesRestartOnSamePort(t *testing.T) {
	b := Start(t)
	addr := b.Addr()
	pub := Subscribe(t, b.URL(), "unused")
	pub.Publish("t/retained", 1, true, []byte("kept"))

	b.Stop()
	if conn, err := net.Dial("tcp", addr); err == nil {
		_ = conn.Close()
		t.Fatalf("broker still accepts connections on %s after Stop", addr)
	}
	b.Start()
	if got := b.Addr(); got != addr {
		t.Fatalf("address after restart: got %s, want %s", got, addr)
	}

	rec := Subscribe(t, b.URL(), "t/#")
	m := rec.WaitFor("t/retained", nil, 5*time.Second)
	if got, want := string(m.Payload), "kept"; got != want {
		t.Errorf("payload: got %q, want %q", got, want)
	}
	if !m.Retained {
		t.Errorf("retained flag: got false, want true")
	}
}

func TestRecorderMissesNothingAcrossRestart(t *testing.T) {
	b := Start(t)
	rec := Subscribe(t, b.URL(), "q/#")
	b.Stop()
	b.Start()
	// Published before the recorder reconnected: the broker queues them
	// for the persistent session.
	pub := Subscribe(t, b.URL(), "unused")
	want := []string{"1", "2", "3"}
	for _, p := range want {
		pub.Publish("q/x", 1, false, []byte(p))
	}
	got := rec.WaitCount("q/x", len(want), 10*time.Second)
	for i := range want {
		if string(got[i].Payload) != want[i] {
			t.Errorf("message %d: got %q, want %q", i, got[i].Payload, want[i])
		}
	}
}

func TestWaitForMatchesAndReset(t *testing.T) {
	b := Start(t)
	rec := Subscribe(t, b.URL(), "w/+")
	rec.Publish("w/a", 1, false, []byte("one"))
	rec.Publish("w/a", 1, false, []byte("two"))
	m := rec.WaitFor("w/a", func(m Message) bool { return string(m.Payload) == "two" }, 5*time.Second)
	if m.Retained {
		t.Errorf("retained flag of a live message: got true, want false")
	}
	if got := len(rec.Messages("w/a")); got != 2 {
		t.Errorf("messages before Reset: got %d, want 2", got)
	}
	rec.Reset()
	if got := len(rec.Messages("")); got != 0 {
		t.Errorf("messages after Reset: got %d, want 0", got)
	}
	if _, ok := rec.Await("w/a", nil, 50*time.Millisecond); ok {
		t.Errorf("Await after Reset found an old message")
	}
}

func TestWithUsersRefusesWrongPassword(t *testing.T) {
	b := Start(t, WithUsers(map[string]string{"meter": "s3cret"}))
	tests := []struct {
		name, user, pass string
		want             error
	}{
		{"right password", "meter", "s3cret", nil},
		{"wrong password", "meter", "nope", packets.ErrorRefusedNotAuthorised},
		{"anonymous", "", "", packets.ErrorRefusedNotAuthorised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).
				SetClientID("auth-" + randomID()).SetUsername(tt.user).SetPassword(tt.pass))
			err := wait(c.Connect())
			if err == nil {
				c.Disconnect(100)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("connect: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKillThenStart(t *testing.T) {
	b := Start(t)
	b.Kill()
	b.Kill() // a second stop is a no-op
	b.Start()
	rec := Subscribe(t, b.URL(), "k")
	rec.Publish("k", 1, false, []byte("alive"))
	rec.WaitFor("k", nil, 5*time.Second)
}
