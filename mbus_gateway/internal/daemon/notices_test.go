package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
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
		"database file was corrupt: moved aside to /data/mbus-gateway.db.corrupt-1 and started with an empty database; readings not yet published were in the old file",
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
