package mqtt

import (
	"context"
	"fmt"
	"slices"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ack deletes outbox rows as their PUBACKs arrive. It takes rows in the
// order they were sent and deletes only an unbroken run of acknowledged
// rows, never a row after one still waiting: when the connection breaks,
// what remains in the outbox is exactly what may not have arrived, and a
// newer row of a meter is never gone while an older one is replayed (which
// would leave its retained states on the older value).
//
// It reports deleted counts on acked, the first failure on failed
// (capacity 1), and returns then or when stop is closed.
func (s *session) ack(ctx context.Context, stop <-chan struct{}, in <-chan entry, acked chan<- int, failed chan<- error) {
	var held *entry // received, not yet complete
	for {
		var e entry
		if held != nil {
			e, held = *held, nil
		} else {
			select {
			case e = <-in:
			case <-stop:
				return
			}
		}
		if !waitAll(e.toks, stop) {
			return
		}
		// Collect the run of rows that are complete already, to delete
		// them in one transaction.
		var seqs []int64
		var err error
		for {
			if err = firstError(e.toks); err != nil {
				break
			}
			seqs = append(seqs, e.seq)
			next, ok := tryReceive(in)
			if !ok {
				break
			}
			if !allDone(next.toks) {
				held = &next
				break
			}
			e = next
		}
		s.deleteAcked(ctx, seqs)
		if len(seqs) > 0 {
			select {
			case acked <- len(seqs):
			case <-stop:
				return
			}
		}
		if err != nil {
			s.c.countPublishError()
			failed <- fmt.Errorf("mqtt: publish row %d: %w", e.seq, err)
			return
		}
	}
}

// deleteAcked removes acknowledged rows. If that fails (a full disk),
// they are marked acknowledged, so that they are never published again
// (a reading sent twice would also set its meter's states back to an
// older value), and deleted later by maintain.
func (s *session) deleteAcked(ctx context.Context, seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	if !s.c.hasUndeleted() {
		err := s.c.box.Delete(ctx, seqs...)
		if err == nil {
			s.c.countAcked(len(seqs))
			return
		}
		s.c.log.Error().Err(err).Int("rows", len(seqs)).
			Msg("outbox delete failed: acknowledged readings are kept aside and deleted once the store can")
	}
	c := s.c
	c.mu.Lock()
	c.undeleted = append(c.undeleted, seqs...)
	c.mu.Unlock()
	if err := c.box.MarkAcked(slices.Max(seqs)); err != nil {
		c.log.Error().Err(err).Msg("marking acknowledged readings failed: they may be published again after a restart")
	}
}

func (c *Client) hasUndeleted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.undeleted) > 0
}

// retryDelete deletes acknowledged rows whose delete failed before.
func (c *Client) retryDelete(ctx context.Context) {
	c.mu.Lock()
	seqs := slices.Clone(c.undeleted)
	c.mu.Unlock()
	if len(seqs) == 0 {
		return
	}
	if err := c.box.Delete(context.WithoutCancel(ctx), seqs...); err != nil {
		c.log.Debug().Err(err).Int("rows", len(seqs)).Msg("outbox delete still failing")
		return
	}
	c.mu.Lock()
	c.undeleted = slices.Delete(c.undeleted, 0, len(seqs))
	c.mu.Unlock()
	c.countAcked(len(seqs))
	c.log.Info().Int("rows", len(seqs)).Msg("outbox delete works again: acknowledged readings deleted")
}

func tryReceive(in <-chan entry) (entry, bool) {
	select {
	case e := <-in:
		return e, true
	default:
		return entry{}, false
	}
}

// waitAll waits until every token completed; false if stop came first.
func waitAll(toks []paho.Token, stop <-chan struct{}) bool {
	for _, t := range toks {
		select {
		case <-t.Done():
		case <-stop:
			return false
		}
	}
	return true
}

func allDone(toks []paho.Token) bool {
	for _, t := range toks {
		select {
		case <-t.Done():
		default:
			return false
		}
	}
	return true
}

func firstError(toks []paho.Token) error {
	for _, t := range toks {
		if err := t.Error(); err != nil {
			return err
		}
	}
	return nil
}
