package logtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// TestBufferConcurrent writes from several loggers at once (run with
// -race) and reads while they write; every line arrives whole.
func TestBufferConcurrent(t *testing.T) {
	const writers, lines = 8, 200
	var buf Buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			log := zerolog.New(&buf)
			for i := range lines {
				log.Info().Int("writer", w).Int("line", i).Msg("reading stored")
			}
		})
	}
	for range 10 {
		_ = buf.Count("reading stored") // reads while the writers write
	}
	wg.Wait()

	if got, want := buf.Count(`"message":"reading stored"`), writers*lines; got != want {
		t.Errorf("Count: got %d, want %d", got, want)
	}
	if got, want := strings.Count(buf.String(), "\n"), writers*lines; got != want {
		t.Errorf("lines: got %d, want %d", got, want)
	}
	for w := range writers {
		if got, want := buf.Count(fmt.Sprintf(`"writer":%d,`, w)), lines; got != want {
			t.Errorf("writer %d: got %d lines, want %d", w, got, want)
		}
	}
}

func TestBufferZero(t *testing.T) {
	var buf Buffer
	if got := buf.String(); got != "" {
		t.Errorf("String of the zero Buffer: got %q, want \"\"", got)
	}
	if got := buf.Count("x"); got != 0 {
		t.Errorf("Count of the zero Buffer: got %d, want 0", got)
	}
	n, err := buf.Write([]byte("a x b x"))
	if n != 7 || err != nil {
		t.Fatalf("Write: got %d, %v, want 7, nil", n, err)
	}
	if got := buf.Count("x"); got != 2 {
		t.Errorf("Count: got %d, want 2", got)
	}
}
