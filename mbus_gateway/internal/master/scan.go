package master

import (
	"context"
	"errors"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Progress is reported after each step of a scan.
type Progress struct {
	// Done counts addresses probed (primary scan) or probes sent
	// (secondary scan).
	Done int
	// Total is the number of addresses of a primary scan (251 for all);
	// 0 for a secondary scan, whose
	// number of probes depends on the meters found.
	Total int
	// Found counts meters found so far.
	Found int
	// Probes counts the requests sent so far: SND_NKE and the REQ_UD2
	// that identifies a meter in a primary scan, selections in a
	// secondary scan; repeats included.
	Probes int
}

// outcome of one probe.
type outcome uint8

const (
	absent    outcome = iota // no answer
	present                  // exactly one meter
	collision                // several meters answered
)

// probeAck sends req, which a matching slave acknowledges with E5, and
// classifies the answer: a garbled one means several slaves answered.
func (m *Master) probeAck(ctx context.Context, req []byte) (outcome, error) {
	_, _, err := m.exchange(ctx, req, wantSoleAck, m.opts.ScanRetries)
	return m.classify(ctx, err)
}

// classify turns the error of a probe into its outcome; what remains as an
// error (a broken port, a cancelled ctx) ends the scan.
func (m *Master) classify(ctx context.Context, err error) (outcome, error) {
	switch {
	case err == nil:
		return present, nil
	case ctx.Err() != nil:
		return absent, ctx.Err()
	case errors.Is(err, ErrTimeout):
		return absent, nil
	case errors.Is(err, ErrGarbage), errors.Is(err, ErrUnexpected):
		m.stats.collisions.Add(1)
		return collision, nil
	}
	return absent, err
}

// identify reads one telegram from a (a primary address, or 253 after a
// select) to learn the secondary address of the meter there. Several
// meters answering garble the telegram: that is a collision too, even
// when their identical E5 acknowledgements merged into a valid one.
func (m *Master) identify(ctx context.Context, a byte) (mbus.SecondaryAddress, outcome, error) {
	req := shortFrame(mbus.CReqUD2|mbus.FCB, a)
	// A lost answer is repeated (the meter did acknowledge); a garbled one
	// is not: it is the collision this probe looks for.
	f, _, err := m.exchange(ctx, req, wantData, 0)
	for range m.opts.Retries {
		if !errors.Is(err, ErrTimeout) {
			break
		}
		m.stats.retries.Add(1)
		f, _, err = m.exchange(ctx, req, wantData, 0)
	}
	out, err := m.classify(ctx, err)
	if out != present || err != nil {
		return mbus.SecondaryAddress{}, out, err
	}
	t, _ := mbus.DecodeTelegram(f)
	if t == nil || !isLongHeader(t.CI) {
		// No long header (CI 0x7A or none): the meter has no secondary
		// address to report.
		return mbus.SecondaryAddress{}, present, nil
	}
	return t.Header.Address, present, nil
}

// ScanPrimary probes the primary addresses 0-250 with SND_NKE. Each
// address that answers is read once (REQ_UD2) for its secondary address;
// a garbled answer to either means several meters share the address, and
// is reported with Found.Collision. Scans talk at Options.Baud. On
// cancellation it returns what it found so far with ctx's error.
func (m *Master) ScanPrimary(ctx context.Context, progress func(Progress)) ([]Found, error) {
	return m.ScanPrimaryRange(ctx, 0, mbus.AddrMaxPrimary, progress)
}

// ScanPrimaryRange is ScanPrimary over the addresses first to last.
func (m *Master) ScanPrimaryRange(ctx context.Context, first, last int, progress func(Progress)) ([]Found, error) {
	if first < 0 || first > mbus.AddrMaxPrimary || last < first || last > mbus.AddrMaxPrimary {
		return nil, fmt.Errorf("scan primary %d-%d: addresses go from 0 to %d", first, last, mbus.AddrMaxPrimary)
	}
	m.at(0) // scans run at the bus speed
	var found []Found
	sent := m.stats.requests.Load()
	for a := byte(first); int(a) <= last; a++ { // last <= 250: a cannot wrap
		f, ok, err := m.probePrimary(ctx, a)
		if err != nil {
			return found, fmt.Errorf("scan primary %d: %w", a, err)
		}
		if ok {
			found = append(found, f)
		}
		if progress != nil {
			progress(Progress{Done: int(a) - first + 1, Total: last - first + 1, Found: len(found),
				Probes: int(m.stats.requests.Load() - sent)}) //nolint:gosec // G115: a scan sends far fewer than 2^63 requests
		}
	}
	return found, nil
}

func (m *Master) probePrimary(ctx context.Context, a byte) (Found, bool, error) {
	out, err := m.probeAck(ctx, shortFrame(mbus.CSndNKE, a))
	if err != nil || out == absent {
		delete(m.linked, a)
		return Found{}, false, err
	}
	f := Found{Primary: int(a), Collision: out == collision}
	if out == collision {
		delete(m.linked, a)
		return f, true, nil
	}
	// SND_NKE was answered: the link is reset and the next FCB is 1,
	// which identify uses.
	sec, out, err := m.identify(ctx, a)
	if err != nil {
		return Found{}, false, err
	}
	m.linked[a] = out == present
	m.fcb[a] = false // identify sent FCB = 1
	f.Secondary = sec
	f.Collision = out == collision
	return f, true, nil
}

// ErrUnresolved is the error of a secondary scan whose selections meters
// acknowledged, but none of which could be read.
var ErrUnresolved = errors.New("meters answered the search but none could be read")

// ScanSecondary finds meters by secondary address with the wildcard tree
// search of EN 13757-3 (annex on secondary search): select a pattern; no
// answer prunes it, one meter is read for its address, a collision splits
// the pattern on the next identification digit, left to right, trying
// 0-9 and A-E. 'F' cannot be tried: it is the wildcard itself, so a meter
// whose ID has an F where the search must split is only found if no other
// meter shares the digits before it; otherwise the pattern comes back as
// a Found with Collision set.
//
// A collision is seen as a garbled answer, or as more bytes behind an E5.
// On a real bus (and in the simulator) colliding answers combine bit by
// bit; in the rare case where one meter's telegram has no 1 bit the
// other's lacks, the combination is that telegram, valid, and the other
// meter stays hidden behind it.
//
// Answers can be late (a converter adds latency): when the wildcard that
// every meter matches goes unanswered, it is probed once more with twice
// the answer time, which the rest of the scan keeps if that brings an
// answer; and where the digits below a collision turn up fewer than two
// meters, the silent ones are probed once more. A scan whose selections
// were acknowledged never ends with nothing found and no error: it fails
// with ErrUnresolved.
//
// Several meters with the same identification number (but another
// manufacturer, version or medium) cannot be split by ID; they come back
// as one Found with Collision set and the ID as Secondary. On cancellation
// ScanSecondary returns what it found so far with ctx's error.
func (m *Master) ScanSecondary(ctx context.Context, progress func(Progress)) ([]Found, error) {
	m.at(0) // scans run at the bus speed
	s := secondaryScan{m: m, progress: progress}
	out, err := s.explore(ctx, mbus.Wildcard, 0)
	if err == nil && out == absent {
		// A late answer to the first try must not pass for one to the
		// second.
		err = portError(m.settle(ctx))
		m.firstByte += AnswerTimeout(m.baud)
		if err == nil {
			_, err = s.explore(ctx, mbus.Wildcard, 0)
		}
	}
	m.deselect(ctx)
	m.at(0) // back to the usual answer time
	if err == nil && len(s.found) == 0 && s.answered {
		err = ErrUnresolved
	}
	if err != nil {
		return s.found, fmt.Errorf("scan secondary: %w", err)
	}
	return s.found, nil
}

// idDigits is the number of digits of the identification number.
const idDigits = 8

type secondaryScan struct {
	m        *Master
	progress func(Progress)
	probes   int
	found    []Found
	// meters counts the meters found: a Found with Collision stands for
	// two at least.
	meters   int
	answered bool // a selection was acknowledged
}

// explore probes pattern, whose first pos ID digits are fixed, and what
// lies below it.
func (s *secondaryScan) explore(ctx context.Context, pattern mbus.SecondaryAddress, pos int) (outcome, error) {
	out, sec, err := s.probe(ctx, pattern)
	if err != nil {
		return out, err
	}
	switch out {
	case present:
		s.add(Found{Primary: -1, Secondary: sec})
	case collision:
		if pos == idDigits {
			s.add(Found{Primary: -1, Secondary: pattern, Collision: true})
			break
		}
		if err := s.split(ctx, pattern, pos); err != nil {
			return out, err
		}
	}
	s.report()
	return out, nil
}

// split explores the digits 0-E at pos below a pattern that collided.
// Two meters at least answered it: when fewer turn up, the digits that
// stayed silent are tried once more (an answer may have come late), and
// if that does not make two, the pattern itself is reported as a
// collision that could not be resolved.
func (s *secondaryScan) split(ctx context.Context, pattern mbus.SecondaryAddress, pos int) error {
	before := s.meters
	var silent []byte
	for d := range byte(0xF) {
		out, err := s.explore(ctx, withDigit(pattern, pos, d), pos+1)
		if err != nil {
			return err
		}
		if out == absent {
			silent = append(silent, d)
		}
	}
	for _, d := range silent {
		if s.meters-before >= 2 {
			return nil
		}
		if _, err := s.explore(ctx, withDigit(pattern, pos, d), pos+1); err != nil {
			return err
		}
	}
	if s.meters-before < 2 {
		s.add(Found{Primary: -1, Secondary: pattern, Collision: true})
	}
	return nil
}

func (s *secondaryScan) add(f Found) {
	s.found = append(s.found, f)
	s.meters++
	if f.Collision {
		s.meters++
	}
}

// probe selects pattern and, when one meter acknowledged, reads it.
func (s *secondaryScan) probe(ctx context.Context, pattern mbus.SecondaryAddress) (outcome, mbus.SecondaryAddress, error) {
	req, err := longFrame(mbus.CSndUD, mbus.AddrNetwork, mbus.CISelect, pattern[:])
	if err != nil {
		return absent, pattern, err
	}
	s.probes++
	out, err := s.m.probeAck(ctx, req)
	s.answered = s.answered || out != absent
	if err != nil || out != present {
		return out, pattern, err
	}
	sec, out, err := s.m.identify(ctx, mbus.AddrNetwork)
	if out == present && sec == (mbus.SecondaryAddress{}) {
		// A short header hides the address; the pattern is all we know.
		sec = pattern
	}
	return out, sec, err
}

func (s *secondaryScan) report() {
	if s.progress != nil {
		s.progress(Progress{Done: s.probes, Found: len(s.found), Probes: s.probes})
	}
}

// withDigit returns pattern with ID digit pos (0 = the most significant,
// as printed) set to d. The ID is BCD, least significant byte first on
// the wire, so digit 0 is the high nibble of byte 3.
func withDigit(pattern mbus.SecondaryAddress, pos int, d byte) mbus.SecondaryAddress {
	i := 3 - pos/2
	if pos%2 == 0 {
		pattern[i] = pattern[i]&0x0F | d<<4
	} else {
		pattern[i] = pattern[i]&0xF0 | d
	}
	return pattern
}
