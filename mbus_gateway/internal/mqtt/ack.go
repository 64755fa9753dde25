package mqtt

import (
	"context"
	"fmt"

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

// deleteAcked removes acknowledged rows. If that fails they stay in the
// outbox and are sent again after the next reconnect: a duplicate, not a
// loss.
func (s *session) deleteAcked(ctx context.Context, seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	if err := s.c.box.Delete(ctx, seqs...); err != nil {
		s.c.log.Error().Err(err).Int("rows", len(seqs)).Msg("outbox delete failed")
		return
	}
	s.c.countAcked(len(seqs))
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
