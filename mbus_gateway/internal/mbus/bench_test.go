package mbus

import (
	"path/filepath"
	"testing"
)

// BenchmarkDecodeCorpus decodes every libmbus test frame (frame layer,
// header, records, keys) and reports the cost per telegram.
//
//	go test -run=^$ -bench=DecodeCorpus -benchmem ./mbus_gateway/internal/mbus
func BenchmarkDecodeCorpus(b *testing.B) {
	files, err := filepath.Glob("testdata/libmbus/test-frames/*.hex")
	if err != nil || len(files) == 0 {
		b.Fatalf("no test frames: %v", err)
	}
	frames := make([][]byte, len(files))
	for i, f := range files {
		frames[i] = readHexFile(b, f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, f := range frames {
			if _, err := ParseTelegram(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N) * float64(len(frames))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/telegram")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		for _, f := range frames {
			_, _ = ParseTelegram(f)
		}
	}))/float64(len(frames)), "allocs/telegram")
}
