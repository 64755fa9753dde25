package web

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// A gateway with two buses: /status lists both (the first one also in
// the single-bus fields), meters name their bus, a scan and an added
// meter go to the bus the request names, a read finds the meter on
// whichever bus has it, and an unknown bus is refused.
func TestTwoBuses(t *testing.T) {
	second := newFakePoller(waterMeter())
	second.found = []master.Found{{Primary: 7}}
	second.steps = 1
	secondAdder := &fakeAdder{p: second}
	first := newFakePoller(heatMeter(t))
	firstAdder := &fakeAdder{p: first}
	f := newFixture(t, func(o *Options) {
		o.Buses = []Bus{
			{Name: "cellar", Poller: first, Adder: firstAdder, Info: o.Bus},
			{Name: "attic", Poller: second, Adder: secondAdder, Info: func() BusInfo { return BusInfo{Device: "tcp://10.0.0.9:10001", Baud: 9600} }},
		}
	})

	st := f.s.status(t.Context())
	var names, devices []string
	for _, b := range st.Buses {
		names, devices = append(names, b.Name), append(devices, b.Device)
	}
	if !slices.Equal(names, []string{"cellar", "attic"}) || !slices.Equal(devices, []string{"/dev/ttyUSB0", "tcp://10.0.0.9:10001"}) {
		t.Errorf("buses: got %q on %q, want cellar and attic on their devices", names, devices)
	}
	if st.Bus.Name != "cellar" || st.Bus.Device != "/dev/ttyUSB0" {
		t.Errorf("bus: got %+v, want the first bus", st.Bus)
	}
	var meters []string
	for _, m := range st.Meters {
		meters = append(meters, m.Bus+" "+m.ID)
	}
	if want := []string{"cellar kam_06855817", "attic " + waterMeter().Meter}; !slices.Equal(meters, want) {
		t.Errorf("meters: got %q, want %q", meters, want)
	}

	res := do(t, f.s.Handler(), request{method: "POST", target: "/scan", body: `{"mode":"primary","bus":"attic"}`})
	if body := readBody(t, res); res.StatusCode != 202 {
		t.Fatalf("scan of attic: got %d %s, want 202", res.StatusCode, body)
	}
	waitFor(t, f.s, "the scan of attic to end", func() bool {
		b := f.s.status(t.Context()).Buses[1].Scan
		return !b.Started.IsZero() && !b.Running
	})
	st = f.s.status(t.Context())
	if got := st.Buses[1].Scan.Found; len(got) != 1 || got[0].Address != "7" {
		t.Errorf("scan of attic found %+v, want the meter at 7", got)
	}
	if !st.Scan.Started.IsZero() {
		t.Errorf("first bus's scan: got %+v, want none started", st.Scan)
	}

	res = do(t, f.s.Handler(), request{method: "POST", target: "/meters", body: `{"address":"9","bus":"attic"}`})
	if body := readBody(t, res); res.StatusCode != 201 || len(secondAdder.calls()) != 1 || len(firstAdder.calls()) != 0 {
		t.Errorf("add to attic: got %d %s, calls %v and %v, want 201 and one call on attic", res.StatusCode, body, firstAdder.calls(), secondAdder.calls())
	}

	res = do(t, f.s.Handler(), request{method: "POST", target: "/meters/" + waterMeter().Meter + "/read", body: "{}"})
	if body := readBody(t, res); res.StatusCode != 200 || !slices.Equal(second.readLog(), []string{waterMeter().Meter}) {
		t.Errorf("read of the attic's meter: got %d %s, reads %v", res.StatusCode, body, second.readLog())
	}

	for _, target := range []string{"/scan", "/meters"} {
		body := `{"mode":"primary","bus":"garage"}`
		if target == "/meters" {
			body = `{"address":"3","bus":"garage"}`
		}
		res = do(t, f.s.Handler(), request{method: "POST", target: target, body: body})
		if got := readBody(t, res); res.StatusCode != 400 || !strings.Contains(got, `no bus \"garage\": want one of cellar, attic`) {
			t.Errorf("%s on an unknown bus: got %d %s, want 400 naming the buses", target, res.StatusCode, got)
		}
	}

	raw := readBody(t, do(t, f.s.Handler(), request{method: "GET", target: "/status"}))
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"bus", "scan", "buses", "meters"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("/status lacks %q", key)
		}
	}
}

// TestBrowserBuses: the page shows a card per bus and scans the bus chosen
// in the scan form; a meter found there is added to that bus.
func TestBrowserBuses(t *testing.T) {
	browser := chromium(t)
	first, second := newFakePoller(heatMeter(t)), newFakePoller(waterMeter())
	second.update(func(s *poll.Snapshot) {
		s.Bus.State = "down"
		s.Bus.LastError = "dial tcp 10.0.0.9:10001: connection refused"
	})
	second.found, second.steps = []master.Found{{Primary: 9}}, 1
	firstAdder, secondAdder := &fakeAdder{p: first}, &fakeAdder{p: second}
	f := newFixture(t, func(o *Options) {
		o.Allow = []string{"127.0.0.1", "::1"}
		o.Refresh = 50 * time.Millisecond
		o.Buses = []Bus{
			{Name: "cellar", Poller: first, Adder: firstAdder, Info: o.Bus},
			{Name: "attic", Poller: second, Adder: secondAdder, Info: func() BusInfo { return BusInfo{Device: "tcp://10.0.0.9:10001"} }},
		}
	})
	br := browse(t, browser, f.s)
	br.run("open the page",
		chromedp.Navigate(br.page),
		textIs("#bus-card h2", "Bus cellar"),
		textIs("#bus-state", "Up"),
		textIs("#bus-card-1 h2", "Bus attic"),
		textIs("#bus-card-1 .pill", "Down"),
		textIs("#bus-card-1 .error", "dial tcp 10.0.0.9:10001: connection refused"),
		visible("#scan-bus"),
		isTrue(`document.querySelector("#meter-kam_06855817 .meter-sub").textContent.startsWith("Bus cellar")`),
	)
	row := `#found-rows tr[data-address="9"]`
	br.run("scan the attic and add what it found",
		chromedp.SetValue(chromedp.CSS("#scan-bus"), "attic"),
		chromedp.SetValue(chromedp.CSS("#scan-mode"), "primary"),
		click("#scan-start"),
		visible(row+" button.add"),
		click(row+" button.add"),
		textIs(row+" .pill", "Configured"),
	)
	if got, want := secondAdder.calls(), []AddRequest{{Address: "9"}}; !slices.Equal(got, want) || len(firstAdder.calls()) > 0 {
		t.Errorf("adder calls: cellar %+v, attic %+v; want %+v on attic", firstAdder.calls(), got, want)
	}
	br.run("screenshot", screenshot(t, "status-buses.png", 1280, 900, false))
	br.finish()
}
