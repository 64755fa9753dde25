package sim

import (
	"fmt"
	"strings"
	"time"
)

// FaultKind names one way a meter or the line misbehaves.
type FaultKind uint8

const (
	// FaultNoAnswer keeps the meter silent.
	FaultNoAnswer FaultKind = iota + 1
	// FaultCorrupt inverts one byte in the middle of the answer.
	FaultCorrupt
	// FaultChecksum puts the checksum byte of the answer off by one
	// (an E5 acknowledgement has no checksum and is sent unchanged).
	FaultChecksum
	// FaultTruncate sends only the first half of the answer.
	FaultTruncate
	// FaultEcho sends the request back before the answer, as some
	// converters do.
	FaultEcho
	// FaultSlow starts the answer only after the response window of
	// EN 13757-2 (330 bit times + 50 ms) has closed; see Fault.Delay.
	FaultSlow
	// FaultHangUp sends the first half of the answer and then ends the
	// conversation, as a TCP converter that restarts in the middle of a
	// frame does: the master reads a partial frame, then end of file.
	// Over a pseudo-terminal, use PTY.Unplug instead.
	FaultHangUp
)

var faultNames = map[FaultKind]string{
	FaultNoAnswer: "no_answer",
	FaultCorrupt:  "corrupt",
	FaultChecksum: "checksum",
	FaultTruncate: "truncate",
	FaultEcho:     "echo",
	FaultSlow:     "slow",
	FaultHangUp:   "hang_up",
}

// String gives the name used in bus files.
func (k FaultKind) String() string {
	if s, ok := faultNames[k]; ok {
		return s
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// ParseFaultKind reads a fault name as written in bus files.
func ParseFaultKind(s string) (FaultKind, error) {
	for k, name := range faultNames {
		if name == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown fault %q (want one of %s)", s, faultKindList())
}

func faultKindList() string {
	names := make([]string, 0, len(faultNames))
	for k := FaultNoAnswer; k <= FaultHangUp; k++ {
		names = append(names, faultNames[k])
	}
	return strings.Join(names, ", ")
}

// Fault is one fault of a meter. It fires on every answer unless Every or
// Probability is set (not both).
type Fault struct {
	Kind FaultKind
	// Every > 0 fires on every Every-th answer of the meter (the Every-th,
	// 2·Every-th, …), counted since the fault was set.
	Every int
	// Probability in (0, 1] fires with that probability, drawn from the
	// bus's seeded generator.
	Probability float64
	// Delay is how late a FaultSlow answer starts beyond the response
	// window; zero means DefaultSlowDelay.
	Delay time.Duration
	// Times > 0 ends the fault after it fired that often (a meter that is
	// slow only for its first answer, say); zero means no end.
	Times int
}

// DefaultSlowDelay is how far past the response window a slow answer
// starts unless Fault.Delay says otherwise: far enough for any master
// that honours the window to have given up.
const DefaultSlowDelay = time.Second

// Validate reports what is wrong with f.
func (f Fault) Validate() error {
	if _, ok := faultNames[f.Kind]; !ok {
		return fmt.Errorf("fault: unknown kind %v", f.Kind)
	}
	if f.Every < 0 {
		return fmt.Errorf("fault %v: every must be positive, got %d", f.Kind, f.Every)
	}
	if f.Probability < 0 || f.Probability > 1 || f.Probability != f.Probability {
		return fmt.Errorf("fault %v: probability must be between 0 and 1, got %v", f.Kind, f.Probability)
	}
	if f.Every > 0 && f.Probability > 0 {
		return fmt.Errorf("fault %v: give every or probability, not both", f.Kind)
	}
	if f.Times < 0 {
		return fmt.Errorf("fault %v: times must not be negative, got %d", f.Kind, f.Times)
	}
	if f.Delay < 0 {
		return fmt.Errorf("fault %v: delay must not be negative, got %v", f.Kind, f.Delay)
	}
	return nil
}

// responseWindow is the longest a master must wait for the first byte of
// an answer: 330 bit times + 50 ms (EN 13757-2 clause 5.3). With no baud
// rate the bit times count as zero.
func responseWindow(baud int) time.Duration {
	return bitTimes(330, baud) + 50*time.Millisecond
}

// bitTimes is n bit times at baud, exact to the nanosecond.
func bitTimes(n, baud int) time.Duration {
	if baud <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / int64(baud))
}

// byteTimes is the time n bytes take on the wire: 11 bits each.
func byteTimes(n, baud int) time.Duration { return bitTimes(11*n, baud) }

// damage applies the byte-changing faults to a copy of ans.
func damage(kind FaultKind, ans []byte) []byte {
	out := append([]byte(nil), ans...)
	switch kind {
	case FaultCorrupt:
		// The middle byte is inside the user data of a long frame, so the
		// frame keeps its length and fails its checksum.
		out[len(out)/2] ^= 0xFF
	case FaultChecksum:
		if len(out) >= 5 {
			out[len(out)-2]++
		}
	case FaultTruncate, FaultHangUp:
		out = out[:len(out)/2]
	}
	return out
}
