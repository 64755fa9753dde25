package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSimulateBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string // stderr
	}{
		{[]string{"--listen", "udp://x", "--bus", "b.yaml"}, `mbus-gateway simulate: --listen "udp://x": want tcp://HOST:PORT or pty` + "\n"},
		{[]string{"--listen", "pty"}, "mbus-gateway simulate: give either --bus FILE or --frames DIR\n"},
		{[]string{"--listen", "pty", "--bus", "a", "--frames", "b"}, "mbus-gateway simulate: give either --bus FILE or --frames DIR\n"},
		{[]string{"--listen", "tcp://127.0.0.1:0", "--link", "/tmp/x", "--bus", "a"}, "mbus-gateway simulate: --link needs --listen pty\n"},
		{[]string{"--listen", "pty", "--bus", "a", "--baud", "-1", "extra"}, "mbus-gateway simulate: unexpected arguments: extra\n--baud -1: must not be negative\n"},
		{[]string{"--listen", "pty", "--bus", "a", "--log-level", "loud"}, `mbus-gateway simulate: --log-level "loud": want debug, info, warn or error` + "\n"},
		{[]string{"--listen", "tcp://127.0.0.1:0", "--bus", "internal/sim/testdata/frames/LICENSE-NOTE.txt"},
			"mbus-gateway simulate: internal/sim/testdata/frames/LICENSE-NOTE.txt: line 4: mapping values are not allowed in this context\n"},
		{[]string{"--listen", "tcp://127.0.0.1:0", "--frames", "internal/sim/testdata/none"},
			"mbus-gateway simulate: frames: open internal/sim/testdata/none: no such file or directory\n"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := cmdSimulate(context.Background(), tt.args, nil, &stdout, &stderr)
		if code != 1 || stderr.String() != tt.want {
			t.Errorf("%q: got exit %d, stderr\n%s\nwant exit 1, stderr\n%s", tt.args, code, stderr.String(), tt.want)
		}
	}
}

func TestSimulateServesTCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := cmdSimulate(ctx, []string{"--listen", "tcp://127.0.0.1:0", "--bus", "internal/sim/testdata/sample.bus.yaml", "--baud", "0", "--delay", "0s"}, nil, w, io.Discard)
		w.Close()
		done <- code
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatal("no output")
	}
	addr, ok := strings.CutPrefix(lines.Text(), "listening on tcp://")
	if !ok {
		t.Fatalf("first line: got %q, want listening on tcp://…", lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0x10, 0x40, 0x06, 0x46, 0x16}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	if _, err := io.ReadFull(c, got); err != nil || got[0] != 0xE5 {
		t.Fatalf("SND_NKE to 6: got %X (%v), want E5", got, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code after cancel: got %d, want 0", code)
	}
}
