package mbus

import (
	"encoding/hex"
	"slices"
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
	// clashes lists the records whose key an earlier record has.
	clashes []int32
}

// keySlot is one entry of the key set.
type keySlot struct {
	rec  int32  // index of the record with the key, plus one; 0 is free
	hash uint32 // hash of the key
}

// prepare sizes the buffer for a telegram of n records and length
// dataLen whose records take recLen bytes (the records are copied in;
// measured on the libmbus corpus, keys and other text take about two
// bytes per data byte) and sets up the key set.
func (t *telegramText) prepare(n, dataLen, recLen int) {
	t.sb.Grow(16 + 2*dataLen + recLen)
	t.initKeys(n)
}

// initKeys sets up the key set for n records.
func (t *telegramText) initKeys(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	t.nkeys = size
	t.clashes = t.clashes[:0]
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
// to the quantity, qhash is keyHash of the quantity. The key depends only
// on what the record says, never on where it stands:
//
//	key = quantity
//	    + VIFE qualifiers            e.g. "_forward", "_l1", "_x01"
//	    + "_max" | "_min" | "_err"   for maximum, minimum, value during error
//	    + "_s<n>"                    for storage number n > 0
//	    + "_t<n>"                    for tariff n > 0
//	    + "_u<n>"                    for subunit n > 0
//
// When another record has the same key, finishKeys tells them apart
// once all records have keys. Quantities contain only [a-z0-9_], so keys
// do too.
func (t *telegramText) setKey(recs []Record, i int, qual []byte, qhash uint64) {
	r := &recs[i]
	if len(qual) == 0 && r.Function == FuncInstantaneous && r.Storage == 0 && r.Tariff == 0 && r.Subunit == 0 {
		// Most records: the key is the quantity itself.
		r.Key = r.Quantity
		t.claim(recs, i, qhash, r.Quantity)
		return
	}
	k := append(t.buf(), r.Quantity...)
	k = append(k, qual...)
	switch r.Function {
	case FuncMaximum:
		k = append(k, "_max"...)
	case FuncMinimum:
		k = append(k, "_min"...)
	case FuncValueDuringError:
		k = append(k, "_err"...)
	}
	if r.Storage > 0 {
		k = appendUint(append(k, "_s"...), r.Storage)
	}
	if r.Tariff > 0 {
		k = appendUint(append(k, "_t"...), uint64(r.Tariff))
	}
	if r.Subunit > 0 {
		k = appendUint(append(k, "_u"...), uint64(r.Subunit))
	}
	r.Key = t.keepOr(k, r.Quantity)
	t.claim(recs, i, keyHash(qhash, k[len(r.Quantity):]), r.Key)
}

// claim enters recs[i].Key, whose keyHash is kh, into the key set, or
// notes a clash when an earlier record has the key.
func (t *telegramText) claim(recs []Record, i int, kh uint64, k string) {
	if slot, h := findKey(t, recs, kh, k); slot.rec == 0 {
		*slot = keySlot{rec: int32(i) + 1, hash: h}
	} else {
		t.clashes = append(t.clashes, int32(i))
	}
}

// finishKeys makes the keys unique once every record has its key,
// without looking at where records stand: of records with the same key
// that differ in their DIF…VIFE bytes, those with the lowest bytes keep
// the key and the others add "_r" and their bytes in hex. Only records
// alike byte for byte, which nothing else tells apart, are numbered
// "_2", "_3", … in telegram order.
func (t *telegramText) finishKeys(recs []Record) {
	if len(t.clashes) == 0 {
		return
	}
	// The clashing records and the records that hold their keys.
	group := t.clashes
	for _, i := range t.clashes {
		slot, _ := findKey(t, recs, keyHash(keyHashStart, recs[i].Key), recs[i].Key)
		group = append(group, slot.rec-1)
	}
	slices.SortFunc(group, func(a, b int32) int {
		if c := strings.Compare(recs[a].Key, recs[b].Key); c != 0 {
			return c
		}
		if c := compareLayout(&recs[a], &recs[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	group = slices.Compact(group)
	for n := 0; n < len(group); {
		base := recs[group[n]].Key
		end := n + 1
		for end < len(group) && recs[group[end]].Key == base {
			end++
		}
		// The lowest bytes keep the key.
		slot, _ := findKey(t, recs, keyHash(keyHashStart, base), base)
		slot.rec = group[n] + 1
		stem, next := base, uint64(2)
		for k := n + 1; k < end; k++ {
			r, prev := &recs[group[k]], &recs[group[k-1]]
			if compareLayout(r, prev) != 0 {
				b := append(t.buf(), base...)
				b = append(b, "_r"...)
				b = hex.AppendEncode(b, []byte(r.DIF))
				b = hex.AppendEncode(b, []byte(r.VIF))
				stem, next = t.keep(b), 2
				if t.free(recs, stem) {
					t.claimNew(recs, group[k], stem)
					continue
				}
			}
			// Twins follow each other, so numbering goes on from the last
			// number given (linear even for thousands of twins).
			var key string
			key, next = t.numbered(recs, stem, next)
			t.claimNew(recs, group[k], key)
		}
		n = end
	}
	t.clashes = group[:0]
}

// compareLayout orders records by their VIF and then DIF bytes.
func compareLayout(a, b *Record) int {
	if c := strings.Compare(string(a.VIF), string(b.VIF)); c != 0 {
		return c
	}
	return strings.Compare(string(a.DIF), string(b.DIF))
}

// free reports whether no record holds key k.
func (t *telegramText) free(recs []Record, k string) bool {
	slot, _ := findKey(t, recs, keyHash(keyHashStart, k), k)
	return slot.rec == 0
}

// numbered returns the first free key of stem_<from>, stem_<from+1>, …
// and the number to go on from.
func (t *telegramText) numbered(recs []Record, stem string, from uint64) (string, uint64) {
	for n := from; ; n++ {
		b := appendUint(append(append(t.buf(), stem...), '_'), n)
		if slot, _ := findKey(t, recs, keyHash(keyHashStart, b), b); slot.rec == 0 {
			return t.keep(b), n + 1
		}
	}
}

// claimNew gives recs[i] the free key k.
func (t *telegramText) claimNew(recs []Record, i int32, k string) {
	recs[i].Key = k
	slot, h := findKey(t, recs, keyHash(keyHashStart, k), k)
	*slot = keySlot{rec: i + 1, hash: h}
}

// appendUint appends n in decimal; single digits, by far the most common
// storage, tariff and subunit numbers, without a call.
func appendUint(dst []byte, n uint64) []byte {
	if n < 10 {
		return append(dst, '0'+byte(n))
	}
	return strconv.AppendUint(dst, n, 10)
}

// findKey returns the slot of key k, whose keyHash is kh (the slot that
// holds k, or the free slot where it belongs), and the slot hash of k.
func findKey[K string | []byte](t *telegramText, recs []Record, kh uint64, k K) (*keySlot, uint32) {
	// The top bits of a multiply mix every bit of kh; the low bits of an
	// FNV hash alone would not.
	h := uint32(kh * 0x9E3779B97F4A7C15 >> 32)
	keys := t.keys()
	mask := uint32(len(keys) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := &keys[p]
		if s.rec == 0 || s.hash == h && recs[s.rec-1].Key == string(k) {
			return s, h
		}
	}
}

// keyHashStart is keyHash of the empty key.
const keyHashStart = 14695981039346656037

// keyHash continues the hash h of a key over the bytes s appended to it
// (64-bit FNV-1a). Because it runs byte by byte, the hash of a quantity
// is worked out once (vifInfo.qhash) and a key only hashes what it adds
// to the quantity. The hash only speeds up finding clashes: the keys do
// not depend on it.
func keyHash[K string | []byte](h uint64, s K) uint64 {
	for i := range len(s) {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// assignKeys gives every record its key (see setKey); for records made
// without a VIB, such as those of the fixed data structure.
func (t *telegramText) assignKeys(recs []Record) {
	t.initKeys(len(recs))
	for i := range recs {
		t.setKey(recs, i, nil, keyHash(keyHashStart, recs[i].Quantity))
	}
	t.finishKeys(recs)
}
