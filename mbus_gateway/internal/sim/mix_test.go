package sim

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// TestMix: what the line carries after a request, with the request's own
// wire time, echoes, and answers that start at different times.
func TestMix(t *testing.T) {
	const baud = 2400
	req := []byte{0x10, 0x40, 0x01, 0x41, 0x16}
	sent := byteNs(len(req), baud)
	long := []byte{0x68, 0xF0, 0x0F, 0x16}
	tests := []struct {
		name      string
		answers   []answer
		echo      bool
		echoDelay time.Duration
		want      []segment
	}{
		{
			name:    "one answer after the request and the delay",
			answers: []answer{{data: ack, delay: 20 * time.Millisecond}},
			want:    []segment{{at: sent + 20*time.Millisecond, data: ack}},
		},
		{
			name:    "echo, then the answer",
			answers: []answer{{data: ack, delay: 20 * time.Millisecond, echo: true}},
			want:    []segment{{data: req}, {at: sent + 20*time.Millisecond, data: ack}},
		},
		{
			name:      "late echo: after the answer it would overlap",
			echo:      true,
			echoDelay: sent + 20*time.Millisecond + byteNs(1, baud)/2,
			answers:   []answer{{data: ack, delay: 20 * time.Millisecond}},
			want:      []segment{{at: sent + 20*time.Millisecond, data: ack}, {at: sent + 20*time.Millisecond + byteNs(1, baud), data: req}},
		},
		{
			name: "converter echo, nobody answers",
			echo: true,
			want: []segment{{data: req}},
		},
		{
			name:    "silent meter, its echo fault still echoes",
			answers: []answer{{data: ack, echo: true, silent: true}},
			want:    []segment{{data: req}},
		},
		{
			name:    "same start: bitwise AND from the first byte",
			answers: []answer{{data: long, delay: 5 * time.Millisecond}, {data: []byte{0x68, 0x0F, 0xF0}, delay: 5 * time.Millisecond}},
			want:    []segment{{at: sent + 5*time.Millisecond, data: []byte{0x68, 0x00, 0x00, 0x16}}},
		},
		{
			name: "a byte later: the second E5 follows the first",
			answers: []answer{
				{data: ack, delay: 20*time.Millisecond + byteNs(1, baud)},
				{data: ack, delay: 20 * time.Millisecond},
			},
			want: []segment{{at: sent + 20*time.Millisecond, data: []byte{0xE5, 0xE5}}},
		},
		{
			name: "starting inside another answer: overlaid at its byte",
			answers: []answer{
				{data: long, delay: 0},
				{data: []byte{0x0F, 0xF0}, delay: byteNs(2, baud) + time.Millisecond},
			},
			want: []segment{{at: sent, data: []byte{0x68, 0xF0, 0x0F, 0x10}}},
		},
		{
			name: "after the line went quiet: a segment of its own",
			answers: []answer{
				{data: ack, delay: 20 * time.Millisecond},
				{data: ack, delay: 40 * time.Millisecond},
			},
			want: []segment{{at: sent + 20*time.Millisecond, data: ack}, {at: sent + 40*time.Millisecond, data: ack}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mix(req, tt.answers, baud, tt.echo, tt.echoDelay)
			if !slices.EqualFunc(got, tt.want, func(a, b segment) bool { return a.at == b.at && bytes.Equal(a.data, b.data) }) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// The answers themselves stay as they were.
	if !bytes.Equal(ack, []byte{0xE5}) || !bytes.Equal(long, []byte{0x68, 0xF0, 0x0F, 0x16}) {
		t.Errorf("mix changed its input: ack %X, long %X", ack, long)
	}
}

// TestFaultTimes: a fault with Times ends after firing that often.
func TestFaultTimes(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	bus := newBus(t, Options{}, Meter{Primary: 1, Telegrams: [][]byte{kam}, Faults: []Fault{{Kind: FaultNoAnswer, Times: 2}}})
	var got []bool
	for range 4 {
		req := sndNKE(t, 1)
		r := bus.handle(mustFrame(t, req), req)
		got = append(got, len(r.segs) > 0)
	}
	if want := []bool{false, false, true, true}; !slices.Equal(got, want) {
		t.Errorf("answered: got %v, want %v", got, want)
	}
}
