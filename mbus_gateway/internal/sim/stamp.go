package sim

import "github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"

// A real meter counts its transmissions in the access number of the data
// header (EN 13757-3 clause 6: "incremented by one after each RSP_UD") and
// its registers move between reads. The simulator does the same, so that
// a master (or a test) can tell every reading apart: each new telegram a
// meter sends carries the next access number, and with Options.Advance the
// first counter register grows by one unit per telegram. A repeat for an
// unchanged FCB (the master's retry after a lost answer) is a
// retransmission of the same telegram and carries the same stamp.

// Offsets of the access number in the user data (after CI), by CI: long
// header (EN 13757-3 clause 6.3: ID 4, manufacturer 2, version, medium,
// access number), short header (clause 6.2: access number first) and the
// fixed data structure (annex G: ID 4, then access number).
const (
	accessOffLong  = 8
	accessOffShort = 0
	accessOffFixed = 4
)

// accessOffset is where the access number sits in the user data of a
// telegram with CI ci; ok is false when the telegram has none.
func accessOffset(ci byte) (off int, ok bool) {
	switch ci {
	case mbus.CIRespVarLong, mbus.CIRespVarLong2:
		return accessOffLong, true
	case mbus.CIRespVarShort:
		return accessOffShort, true
	case mbus.CIRespFixed, mbus.CIRespFixed2:
		return accessOffFixed, true
	}
	return 0, false
}

// headerLen is the length of the data header for CI ci (variable data
// responses only; ok is false for the fixed structure, which has no
// records to advance).
func headerLen(ci byte) (n int, ok bool) {
	switch ci {
	case mbus.CIRespVarLong, mbus.CIRespVarLong2:
		return 12, true
	case mbus.CIRespVarShort:
		return 4, true
	case mbus.CIRespVarNone:
		return 0, true
	}
	return 0, false
}

// stamp writes transmission n into the long frame out (checksum not yet
// fixed): the access number moves on by n unless fixed, and with advance
// the first counter register grows by n.
func stamp(out []byte, n uint64, fixedAccess, advance bool) {
	if n == 0 || len(out) < dataOff+2 {
		return
	}
	ci := out[dataOff-1]
	data := out[dataOff : len(out)-2]
	if off, ok := accessOffset(ci); ok && !fixedAccess && off < len(data) {
		data[off] += byte(n) //nolint:gosec // G115: the access number is a byte and wraps by design
	}
	if advance {
		if h, ok := headerLen(ci); ok && h <= len(data) {
			if pos, size, bcd, ok := firstCounter(data[h:]); ok {
				addRegister(data[h+pos:h+pos+size], n, bcd, ci == mbus.CIRespVarLong2)
			}
		}
	}
}

// Data field codes of the DIF (EN 13757-3 table 4): integer sizes and BCD
// digit pairs; the others (real, variable length, none) are not counters
// the simulator advances.
var (
	intSize = map[byte]int{0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
	bcdSize = map[byte]int{0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
	// realSize and the variable length (0xD) are skipped over.
	realSize = 4
)

// firstCounter finds the first record whose value is a register that only
// grows: a current value (storage 0, instantaneous) of energy, volume or
// mass (VIF E000 0nnn to E001 1nnn, EN 13757-3 table 10) coded as an
// integer or BCD. It returns the offset and size of the value within
// records. Anything it cannot walk ends the search: the telegram is then
// sent unchanged.
func firstCounter(records []byte) (pos, size int, bcd, ok bool) {
	i := 0
	for i < len(records) {
		dif := records[i]
		switch {
		case dif == 0x2F: // idle filler
			i++
			continue
		case dif&0x0F == 0x0F: // manufacturer data or more records follow
			return 0, 0, false, false
		}
		plain := dif&0x30 == 0 && dif&0x40 == 0 // instantaneous, storage bit 0
		i++
		for j := dif; j&0x80 != 0; i++ { // DIFEs: storage, tariff, subunit
			if i >= len(records) {
				return 0, 0, false, false
			}
			j = records[i]
			plain = plain && j&0x7F == 0
		}
		if i >= len(records) {
			return 0, 0, false, false
		}
		vif := records[i]
		i++
		if vif&0x7F == 0x7C { // plain-text VIF: length and ASCII follow
			if i >= len(records) {
				return 0, 0, false, false
			}
			i += 1 + int(records[i])
		}
		for j := vif; j&0x80 != 0; i++ {
			if i >= len(records) {
				return 0, 0, false, false
			}
			j = records[i]
			plain = false // a VIFE changes the meaning; leave it alone
		}
		code := dif & 0x0F
		n, isInt := intSize[code]
		m, isBCD := bcdSize[code]
		switch {
		case isInt:
		case isBCD:
			n = m
		case code == 0x5:
			n = realSize
		case code == 0xD:
			if i >= len(records) || records[i] > 0xBF {
				return 0, 0, false, false
			}
			n = 1 + int(records[i]&0x3F)
		}
		if i+n > len(records) {
			return 0, 0, false, false
		}
		if plain && (isInt || isBCD) && vif&0x7F < 0x20 {
			return i, n, isBCD, true
		}
		i += n
	}
	return 0, 0, false, false
}

// addRegister adds n to a register stored least significant byte first
// (most significant first for mode 2), in binary or BCD, wrapping at its
// size as the meter's own register would.
func addRegister(b []byte, n uint64, bcd, msbFirst bool) {
	order := make([]int, len(b))
	for k := range order {
		order[k] = k
		if msbFirst {
			order[k] = len(b) - 1 - k
		}
	}
	if !bcd {
		carry := n
		for _, k := range order {
			sum := uint64(b[k]) + carry&0xFF
			b[k] = byte(sum) //nolint:gosec // G115: low byte wanted
			carry = carry>>8 + sum>>8
		}
		return
	}
	for _, v := range b {
		if v&0x0F > 9 || v>>4 > 9 {
			return // not BCD after all (a negative or error value): leave it alone
		}
	}
	carry := n
	for _, k := range order {
		lo, hi := uint64(b[k]&0x0F), uint64(b[k]>>4)
		v := hi*10 + lo + carry%100
		carry = carry/100 + v/100
		v %= 100
		b[k] = byte(v/10<<4 | v%10) //nolint:gosec // G115: two digits fit
	}
}
