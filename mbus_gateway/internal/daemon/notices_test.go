package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// TestNotices: the page's warnings are why the database does not open,
// the quarantine, the warnings of the options in effect (replaced on
// reload) and the live ones, in that order.
func TestNotices(t *testing.T) {
	o := &config.Options{PollInterval: time.Minute, ExpireAfter: 30 * time.Second, ScanOnStart: true}
	live := []string{"bus busy"}
	n := newNotices(o)
	optionsWarning := "expire_after: 30 s is shorter than poll_interval (60 s): its entities will turn unavailable between reads"
	if got, want := n.list(), []string{optionsWarning}; !slices.Equal(got, want) {
		t.Errorf("at start: got %q, want %q", got, want)
	}
	n.setStore("cannot open the database /data/mbus-gateway.db: permission denied")
	n.setQuarantined("/data/mbus-gateway.db.corrupt-1")
	n.setLive(func() []string { return live })
	want := []string{
		"cannot open the database /data/mbus-gateway.db: permission denied",
		"database file was corrupt: moved aside to /data/mbus-gateway.db.corrupt-1 and started with a new database; the readings that could be read from it were taken over when it was moved (see the log of that start)",
		optionsWarning,
		"bus busy",
	}
	if got := n.list(); !slices.Equal(got, want) {
		t.Errorf("all set: got %q, want %q", got, want)
	}
	n.setStore("")
	o.ExpireAfter, live = 0, nil
	n.setOptions(o)
	if got := n.list(); !slices.Equal(got, want[1:2]) {
		t.Errorf("database open, after a reload: got %q, want %q", got, want[1:2])
	}
	if got := newNotices(o).list(); len(got) != 0 {
		t.Errorf("nothing to warn about: got %q", got)
	}
}

// The quarantine warning says how many queued readings were saved and
// lost in this run.
func TestSalvageNote(t *testing.T) {
	const file = "/data/mbus-gateway.db.corrupt-1"
	tests := []struct {
		s    *web.Salvage
		want string
	}{
		{&web.Salvage{File: file, Saved: 388, Lost: 2, LostKnown: true}, "388 readings queued in it were saved, 2 could not be read and are lost"},
		{&web.Salvage{File: file, Saved: 12, LostKnown: true}, "all 12 readings queued in it were saved"},
		{&web.Salvage{File: file}, "nothing could be read from it: the readings queued in it are lost"},
		{&web.Salvage{File: file, Error: "store: salvage: disk full"}, "taking over its queued readings failed (store: salvage: disk full): they are still in that file"},
		{&web.Salvage{File: "/data/other"}, "(see the log of that start)"},
	}
	for _, tt := range tests {
		n := newNotices(&config.Options{ScanOnStart: true})
		n.setQuarantined(file)
		n.setSalvage(tt.s)
		got := n.list()
		if len(got) != 1 || !strings.HasSuffix(got[0], tt.want) {
			t.Errorf("%+v: got %q, want it to end with %q", tt.s, got, tt.want)
		}
		if s := n.salvaged(); s == nil || *s != *tt.s {
			t.Errorf("salvaged: got %+v, want %+v", s, tt.s)
		}
	}
}

func TestDescribeChanges(t *testing.T) {
	tests := []struct {
		ch   poll.MeterChanges
		want string
	}{
		{poll.MeterChanges{}, ""},
		{poll.MeterChanges{Added: 1}, "1 added"},
		{poll.MeterChanges{Added: 1, Removed: 2, Changed: 3}, "1 added, 2 removed, 3 changed"},
		{poll.MeterChanges{Changed: 4}, "4 changed"},
	}
	for _, tt := range tests {
		if got := describeChanges(tt.ch); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.ch, got, tt.want)
		}
	}
}
