package poll

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

func keysOf(rs []mbus.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

func TestMergeRecords(t *testing.T) {
	tests := []struct {
		name      string
		telegrams [][]string
		want      []string
	}{
		{"one telegram", [][]string{{"energy", "volume"}}, []string{"energy", "volume"}},
		{"distinct keys", [][]string{{"energy"}, {"volume"}}, []string{"energy", "volume"}},
		{"repeated key gets the telegram number", [][]string{{"energy", "volume"}, {"energy"}, {"energy"}},
			[]string{"energy", "volume", "energy_t2", "energy_t3"}},
		{"suffix already taken", [][]string{{"energy", "energy_t2"}, {"energy"}},
			[]string{"energy", "energy_t2", "energy_t2_2"}},
		{"no records", [][]string{{}, {}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts []*mbus.Telegram
			for _, keys := range tt.telegrams {
				ts = append(ts, telegram("1", keys...))
			}
			if got := keysOf(mergeRecords(ts)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBuildReading(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	appErr := &mbus.Telegram{CI: mbus.CIAppError, AppError: 2}
	tests := []struct {
		name      string
		res       master.Result
		wantMeter string
		wantErr   string
	}{
		{"header names the meter", master.Result{Telegrams: []*mbus.Telegram{telegram("7", "energy")}}, "kam_00000007", ""},
		{"no header falls back to the address", master.Result{Telegrams: []*mbus.Telegram{{AppError: -1}}}, "addr_7", ""},
		{"no telegram", master.Result{Telegrams: []*mbus.Telegram{nil}}, "", "no telegram in the answer"},
		{"application error report", master.Result{Telegrams: []*mbus.Telegram{appErr}}, "addr_7", "meter reported application error 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := buildReading(tt.res, "Heat", "7", at)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr || r.Meter != tt.wantMeter {
				t.Errorf("got %q, %q; want %q, %q", r.Meter, gotErr, tt.wantMeter, tt.wantErr)
			}
			if err == nil && (r.Name != "Heat" || r.Address != "7" || !r.Time.Equal(at)) {
				t.Errorf("reading: got %+v", r)
			}
		})
	}
	if _, err := buildReading(master.Result{}, "", "7", at); !errors.Is(err, ErrNoTelegram) {
		t.Errorf("empty result: got %v, want ErrNoTelegram", err)
	}
}

// BenchmarkMergeRecords measures merging a three-telegram answer with
// repeated keys: go test -run=^$ -bench=MergeRecords -benchmem ./mbus_gateway/internal/poll/
func BenchmarkMergeRecords(b *testing.B) {
	keys := []string{"energy", "volume", "power", "flow", "flow_temperature", "return_temperature", "on_time", "fabrication_number"}
	ts := []*mbus.Telegram{telegram("1", keys...), telegram("1", keys...), telegram("1", keys...)}
	b.ReportAllocs()
	for b.Loop() {
		mergeRecords(ts)
	}
}
