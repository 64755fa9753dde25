package mbus

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// splitRecords returns the variable data records of a long frame as byte
// slices (fillers dropped) and what follows them (DIF 0x0F/0x1F and
// manufacturer data).
func splitRecords(t *testing.T, f Frame, hdrLen int) (recs [][]byte, tail []byte) {
	t.Helper()
	r := recordReader{b: f.Data[hdrLen:]}
	i := r.skipFillers(0)
	for i < len(r.b) && r.b[i] != difManufacturer && r.b[i] != difMoreFollow {
		l, err := r.layout(i)
		if err != nil {
			t.Fatalf("layout at %d: %v", i, err)
		}
		recs = append(recs, r.b[l.dif:l.end])
		i = r.skipFillers(l.end)
	}
	return recs, r.b[i:]
}

// shuffleKeepingTwins shuffles recs, except that records whose DIF…VIFE
// bytes are alike keep their order among themselves: nothing but their
// order tells such records apart, so their keys are numbered by it.
func shuffleKeepingTwins(rng *rand.Rand, recs [][]byte, layout func([]byte) string) [][]byte {
	out := append([][]byte(nil), recs...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	byLayout := map[string][][]byte{}
	for _, r := range recs {
		byLayout[layout(r)] = append(byLayout[layout(r)], r)
	}
	for i, r := range out {
		l := layout(r)
		out[i] = byLayout[l][0]
		byLayout[l] = byLayout[l][1:]
	}
	return out
}

// keyValues maps each record's key to its value, and fails on a key
// given twice.
func keyValues(t *testing.T, tg *Telegram) map[string]string {
	t.Helper()
	m := make(map[string]string, len(tg.Records))
	for _, r := range tg.Records {
		if _, dup := m[r.Key]; dup {
			t.Fatalf("key %q given twice", r.Key)
		}
		m[r.Key] = r.Value.String() + " " + r.Unit
	}
	return m
}

// checkReorderings decodes frame and n reorderings of its records and
// checks that every one gives the same key → value map.
func checkReorderings(t *testing.T, rng *rand.Rand, frame []byte, n int) {
	t.Helper()
	f, _, err := DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := DecodeTelegram(f)
	if err != nil {
		return // only whole telegrams can be reordered
	}
	hdrLen, ok := varHeaderLen(f.CI)
	if !ok {
		return
	}
	want := keyValues(t, tg)
	recs, tail := splitRecords(t, f, hdrLen)
	r := recordReader{}
	layout := func(rec []byte) string {
		r.b = rec
		l, err := r.layout(0)
		if err != nil {
			t.Fatal(err)
		}
		return string(rec[:l.data])
	}
	for range n {
		order := shuffleKeepingTwins(rng, recs, layout)
		g := f
		g.Data = append(append(append([]byte(nil), f.Data[:hdrLen]...), bytes.Join(order, nil)...), tail...)
		back, err := DecodeTelegram(g)
		if err != nil {
			t.Fatalf("reordered telegram: %v", err)
		}
		got := keyValues(t, back)
		if d := mapDiff(want, got); d != "" {
			t.Fatalf("reordering changed the key → value map:\n%s", d)
		}
	}
}

// mapDiff describes how got differs from want, "" when they are equal.
func mapDiff(want, got map[string]string) string {
	var b strings.Builder
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			fmt.Fprintf(&b, "  %s: want %q, got %q\n", k, v, g)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %s: unexpected %q\n", k, v)
		}
	}
	return b.String()
}

// TestKeysIgnoreRecordOrder reorders the records of every corpus
// telegram at random: the key → value map must not change.
func TestKeysIgnoreRecordOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 16))
	for _, path := range allHexFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := ParseHex(string(mustRead(t, path)))
			if err != nil {
				t.Skip("not a frame")
			}
			if _, _, err := DecodeFrame(b); err != nil {
				t.Skip("not a frame")
			}
			checkReorderings(t, rng, b, 20)
		})
	}
}

// randomRecordSpec makes a record of the kinds that meters send: VIFs of
// every table, VIFE extensions (phases, manufacturer specific), storage,
// tariff, subunit and function.
func randomRecordSpec(rng *rand.Rand) RecordSpec {
	vifs := [][]byte{
		{0x04}, {0x06}, {0x13}, {0x2B}, {0x3B}, {0x5B}, {0x5F}, {0x61},
		{0xFD, 0x48}, {0xFD, 0x59}, {0xFB, 0x00}, {0xFD, 0x17}, {0xFD, 0x3A},
		{0x84, 0x3B}, {0x84, 0x3C}, {0xFD, 0xC8, 0xFC, 0x01}, {0xFD, 0xC8, 0xFC, 0x02},
		{0xFD, 0xC8, 0xFC, 0x05}, {0xFD, 0xD9, 0xFC, 0x03}, {0xAB, 0xFF, 0x01},
		{0xAB, 0xFF, 0x02}, {0x93, 0x7F}, {0xFF, 0x68}, {0xFF, 0xE1, 0xFF, 0x01},
		{0x86, 0xFC, 0x04}, {0xAB, 0xFC, 0x7F}, {0xEC, 0x7E},
	}
	return RecordSpec{
		Function: Function(rng.IntN(4)),
		Storage:  uint64(rng.IntN(3)),
		Tariff:   uint32(rng.IntN(3)),
		Subunit:  uint32(rng.IntN(2)),
		Coding:   []byte{DataInt16, DataInt32, DataBCD8}[rng.IntN(3)],
		VIF:      vifs[rng.IntN(len(vifs))],
		Int:      int64(rng.IntN(9999)),
	}
}

// TestKeysIgnoreRecordOrderRandom builds random telegrams with the
// encoder and reorders their records.
func TestKeysIgnoreRecordOrderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 13757))
	for n := range 300 {
		specs := make([]RecordSpec, 1+rng.IntN(20))
		for i := range specs {
			specs[i] = randomRecordSpec(rng)
		}
		frame, err := EncodeTelegram(1, testHeader, specs, false, nil)
		if err != nil {
			t.Fatalf("telegram %d: %v", n, err)
		}
		checkReorderings(t, rng, frame, 5)
	}
}

// keyVIFs maps each key of the telegram in path to the record's VIF bytes
// in hex.
func keyVIFs(t *testing.T, path string) map[string]string {
	t.Helper()
	tg, err := ParseTelegram(readHexFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m := map[string]string{}
	for _, r := range tg.Records {
		m[r.Key] = fmt.Sprintf("%x", r.VIF)
	}
	return m
}

// TestPhaseKeys checks real three-phase sequences: phases get _l1, _l2,
// _l3 and the total keeps the plain key.
func TestPhaseKeys(t *testing.T) {
	tests := []struct {
		path string
		want map[string]string // key → VIF
	}{
		{"testdata/libmbus/test-frames/SBC_Saia-Burgess-ALE3.hex", map[string]string{
			"voltage_l1": "fdc9ff01", "voltage_l2": "fdc9ff02", "voltage_l3": "fdc9ff03",
			"current_l1": "fddbff01", "current_l2": "fddbff02", "current_l3": "fddbff03",
			"power_l1": "acff01", "power_l2": "acff02", "power_l3": "acff03", "power": "acff00",
			"power_l1_u1": "acff01", "power_u1": "acff00",
		}},
		{"testdata/libmbus/test-frames/EMU_EMU-Professional-375-M-Bus.hex", map[string]string{
			"power_l1": "abff01", "power_l2": "abff02", "power_l3": "abff03", "power": "2b",
			"current_l1": "fdd9ff01", "current_l3": "fdd9ff03", "current": "fd59",
			"voltage_l2_min": "fdc8ff02", "voltage_l3_max": "fdc8ff03",
		}},
		{"testdata/frames/schneider_iem3135_1.hex", map[string]string{
			"energy_l1": "83ff01", "energy_l2": "83ff02", "energy_l3": "83ff03",
			"energy_x09": "83ff09", "energy_x0d": "83ff0d", "energy_u1": "03",
		}},
		{"testdata/frames/abb_a41_2.hex", map[string]string{
			"voltage_l1": "fdc8ff8100", "current_l1": "fdd9ff8100", "power": "a900",
		}},
		{"testdata/libmbus/test-frames/electricity-meter-2.hex", map[string]string{
			// Manufacturer code 0: the extensions have no known meaning.
			"power_x01": "acff01", "power_x00": "acff00",
		}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			got := keyVIFs(t, tt.path)
			for k, vif := range tt.want {
				if got[k] != vif {
					t.Errorf("key %s: VIF %q, want %q (keys: %v)", k, got[k], vif, got)
				}
			}
		})
	}
}

// TestExtensionKeys checks the names of the combinable extension table
// (after VIFE 0xFC) and of manufacturer specific extensions.
func TestExtensionKeys(t *testing.T) {
	vifs := map[string][]byte{
		"voltage":       {0xFD, 0x48},
		"voltage_l1":    {0xFD, 0xC8, 0xFC, 0x01},
		"voltage_l2":    {0xFD, 0xC8, 0xFC, 0x02},
		"voltage_l3":    {0xFD, 0xC8, 0xFC, 0x03},
		"voltage_n":     {0xFD, 0xC8, 0xFC, 0x04},
		"voltage_l1_l2": {0xFD, 0xC8, 0xFC, 0x05},
		"voltage_l2_l3": {0xFD, 0xC8, 0xFC, 0x06},
		"voltage_l3_l1": {0xFD, 0xC8, 0xFC, 0x07},
		"voltage_fc20":  {0xFD, 0xC8, 0xFC, 0x20},
		"voltage_x05":   {0xFD, 0xC8, 0xFF, 0x05},
		"voltage_x8101": {0xFD, 0xC8, 0xFF, 0x81, 0x01},
		"voltage_mfr":   {0xFD, 0xC8, 0x7F},
		// A record error is the record's state, not what it is.
		"current":         {0xFD, 0xD9, 0x15},
		"power_average":   {0xAB, 0x12},
		"energy_forward":  {0x84, 0x3B},
		"energy_backward": {0x84, 0x3C},
		"power_v3d":       {0xAB, 0x3D},
	}
	var specs []RecordSpec
	var keys []string
	for k, vif := range vifs {
		keys = append(keys, k)
		specs = append(specs, RecordSpec{Coding: DataInt16, VIF: vif, Int: int64(len(specs))})
	}
	frame, err := EncodeTelegram(1, testHeader, specs, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := ParseTelegram(frame)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range tg.Records {
		if r.Key != keys[i] {
			t.Errorf("VIF % x: key %q, want %q", vifs[keys[i]], r.Key, keys[i])
		}
	}
}
