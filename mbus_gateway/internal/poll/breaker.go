package poll

import (
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
)

// BreakerState is the state of a circuit breaker. The numbers are the
// values of the mbus_breaker_state metric.
type BreakerState uint8

// States of a Breaker.
const (
	BreakerClosed   BreakerState = 0 // requests go out; failures are counted
	BreakerHalfOpen BreakerState = 1 // one probe is out after an open period
	BreakerOpen     BreakerState = 2 // no requests until the backoff is over
)

var breakerStateNames = [...]string{
	BreakerClosed:   "closed",
	BreakerHalfOpen: "half_open",
	BreakerOpen:     "open",
}

func (s BreakerState) String() string {
	if int(s) < len(breakerStateNames) {
		return breakerStateNames[s]
	}
	return fmt.Sprintf("breaker_state_%d", s)
}

// MarshalText makes a BreakerState a JSON string.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Breaker is the circuit breaker of one meter. The zero value is closed
// and uses the package defaults.
//
// Threshold consecutive failures open it. While open, requests wait; once
// the backoff is over, Allow lets one probe through (half-open). A success
// closes the breaker; a failure while open or half-open re-opens it with
// the backoff doubled, up to Max. The caller reports the meter offline
// when Failure says the breaker opened, so that happens once per outage.
type Breaker struct {
	// Threshold is the number of consecutive failures that open the
	// breaker; 0 means DefaultFailureThreshold.
	Threshold int
	// Base is the first backoff; 0 means DefaultBreakerBase.
	Base time.Duration
	// Max caps the backoff; 0 means DefaultBreakerMaxBackoff.
	Max time.Duration

	state    BreakerState
	failures int
	backoff  time.Duration
	retryAt  time.Time
}

// State returns the current state.
func (b *Breaker) State() BreakerState { return b.state }

// Failures returns the number of consecutive failures.
func (b *Breaker) Failures() int { return b.failures }

// RetryAt returns when an open breaker lets the next probe through; zero
// when the breaker is not open.
func (b *Breaker) RetryAt() time.Time {
	if b.state != BreakerOpen {
		return time.Time{}
	}
	return b.retryAt
}

// Allow reports whether a request may go out at now. An open breaker
// whose backoff is over turns half-open and allows the probe.
func (b *Breaker) Allow(now time.Time) bool {
	if b.state == BreakerOpen {
		if now.Before(b.retryAt) {
			return false
		}
		b.state = BreakerHalfOpen
	}
	return true
}

// Success records an answered request. It reports whether the breaker
// was open or half-open, i.e. whether the meter just came back.
func (b *Breaker) Success() (recovered bool) {
	recovered = b.state != BreakerClosed
	b.state, b.failures, b.backoff, b.retryAt = BreakerClosed, 0, 0, time.Time{}
	return recovered
}

// Failure records a failed request at now. It reports whether the
// breaker went from closed to open, the moment to report the meter
// offline; later failures of an open meter only lengthen the backoff.
func (b *Breaker) Failure(now time.Time) (opened bool) {
	b.failures++
	switch b.state {
	case BreakerClosed:
		if b.failures < b.threshold() {
			return false
		}
		b.backoff = b.baseBackoff()
		opened = true
	default:
		b.backoff = backoff.Backoff{Min: b.baseBackoff(), Max: b.maxBackoff()}.Next(b.backoff)
	}
	b.state = BreakerOpen
	b.retryAt = now.Add(b.backoff)
	return opened
}

func (b *Breaker) threshold() int {
	if b.Threshold > 0 {
		return b.Threshold
	}
	return DefaultFailureThreshold
}

func (b *Breaker) baseBackoff() time.Duration {
	if b.Base > 0 {
		return b.Base
	}
	return DefaultBreakerBase
}

// maxBackoff is never below the base, so a long interval is not cut short.
func (b *Breaker) maxBackoff() time.Duration {
	m := b.Max
	if m <= 0 {
		m = DefaultBreakerMaxBackoff
	}
	return max(m, b.baseBackoff())
}
