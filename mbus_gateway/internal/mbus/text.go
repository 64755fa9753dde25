package mbus

import (
	"hash/maphash"
	"strconv"
	"strings"
)

// telegramText makes the strings of one telegram: header ID and
// manufacturer, quantities with VIFE suffixes, plain text, BCD error
// digits and record keys. They are all written into one strings.Builder
// and handed out as substrings of it; a Builder never changes bytes it
// has written, so the strings stay valid as it grows, and a telegram
// costs one text allocation instead of one per string.
type telegramText struct {
	sb strings.Builder
	// scratch assembles one string before keep stores it; the array keeps
	// short strings off the heap.
	scratch [128]byte
	// keys is an open-addressing hash set of the keys given so far, so
	// that finding a clash costs the same for 10 records as for 10000
	// (fuzzing and corrupt data make long telegrams). keyArr[:nkeys]
	// holds it for telegrams of up to len(keyArr)/2 records, bigKeys for
	// longer ones.
	keyArr  [128]keySlot
	nkeys   int
	bigKeys []keySlot
}

// keySlot is one entry of the key set.
type keySlot struct {
	rec  int32  // index of the record with the key, plus one; 0 is free
	hash uint32 // hash of the key
	// next is the next "_<n>" to try when the key clashes again, so that
	// many records with one key are numbered in linear time.
	next uint32
}

// prepare sizes the buffer for a telegram of n records and length
// dataLen (measured on the libmbus corpus: keys and other text take
// about two bytes per data byte) and sets up the key set.
func (t *telegramText) prepare(n, dataLen int) {
	t.sb.Grow(16 + 2*dataLen)
	t.initKeys(n)
}

// initKeys sets up the key set for n records.
func (t *telegramText) initKeys(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	t.nkeys = size
	if size > len(t.keyArr) {
		t.bigKeys = make([]keySlot, size)
	}
}

// keys returns the key set. (Keeping a slice of keyArr in a field
// instead would make the compiler move every telegramText to the heap.)
func (t *telegramText) keys() []keySlot {
	if t.bigKeys != nil {
		return t.bigKeys
	}
	return t.keyArr[:t.nkeys]
}

// buf returns the empty scratch buffer.
func (t *telegramText) buf() []byte { return t.scratch[:0] }

// keep stores b and returns it as a string.
func (t *telegramText) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := t.sb.Len()
	t.sb.Write(b)
	return t.sb.String()[start:]
}

// keepOr returns s when b spells it (a table string costs nothing), and
// keep(b) otherwise.
func (t *telegramText) keepOr(b []byte, s string) string {
	if string(b) == s {
		return s
	}
	return t.keep(b)
}

// setKey gives recs[i] its key; qual is what VIFEs add to the key but not
// to the quantity. The rule, stable for a meter model because it depends
// only on the record layout:
//
//	key = quantity
//	    + VIFE qualifiers            e.g. "_forward", "_l1", "_future"
//	    + "_max" | "_min" | "_err"   for maximum, minimum, value during error
//	    + "_s<n>"                    for storage number n > 0
//	    + "_t<n>"                    for tariff n > 0
//	    + "_u<n>"                    for subunit n > 0
//	    + "_2", "_3", …              when an earlier record has the same key
//
// Quantities contain only [a-z0-9_], so keys do too.
func (t *telegramText) setKey(recs []Record, i int, qual []string) {
	r := &recs[i]
	k := append(t.buf(), r.Quantity...)
	for _, q := range qual {
		k = append(k, q...)
	}
	switch r.Function {
	case FuncMaximum:
		k = append(k, "_max"...)
	case FuncMinimum:
		k = append(k, "_min"...)
	case FuncValueDuringError:
		k = append(k, "_err"...)
	}
	if r.Storage > 0 {
		k = strconv.AppendUint(append(k, "_s"...), r.Storage, 10)
	}
	if r.Tariff > 0 {
		k = strconv.AppendUint(append(k, "_t"...), uint64(r.Tariff), 10)
	}
	if r.Subunit > 0 {
		k = strconv.AppendUint(append(k, "_u"...), uint64(r.Subunit), 10)
	}
	slot, h := t.find(recs, k)
	if slot.rec != 0 {
		clash := slot
		base := len(k)
		n := max(2, clash.next) // resume after the last clash of this key
		for ; ; n++ {
			k = strconv.AppendUint(append(k[:base], '_'), uint64(n), 10)
			if slot, h = t.find(recs, k); slot.rec == 0 {
				break
			}
		}
		clash.next = n + 1
	}
	r.Key = t.keepOr(k, r.Quantity)
	*slot = keySlot{rec: int32(i) + 1, hash: h}
}

// keySeed seeds the key hash; the hash only speeds up finding clashes,
// so the keys do not depend on it.
var keySeed = maphash.MakeSeed()

// find returns the slot of key k (the one that holds it, or the free
// slot where it belongs) and the hash of k.
func (t *telegramText) find(recs []Record, k []byte) (*keySlot, uint32) {
	h := uint32(maphash.Bytes(keySeed, k))
	keys := t.keys()
	mask := uint32(len(keys) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := &keys[p]
		if s.rec == 0 || s.hash == h && recs[s.rec-1].Key == string(k) {
			return s, h
		}
	}
}

// assignKeys gives every record its key (see setKey); for records made
// without a VIB, such as those of the fixed data structure.
func (t *telegramText) assignKeys(recs []Record) {
	t.initKeys(len(recs))
	for i := range recs {
		t.setKey(recs, i, nil)
	}
}
