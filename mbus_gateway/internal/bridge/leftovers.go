package bridge

import (
	"context"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// placeholderPrefix starts the <meter> level that earlier versions gave a
// meter before its first answer ("addr_5"). Today a meter has no topics
// before its identity is known; what those versions left retained on the
// broker is cleared here.
const placeholderPrefix = "addr_"

// placeholderLeaves are the topics earlier versions published under a
// placeholder: the meter's availability and the bridge's diagnostics.
var placeholderLeaves = []string{"availability", hass.MeterLastSuccess, hass.MeterFailures}

// subscribeLeftovers listens for retained messages under placeholders.
func (b *Bridge) subscribeLeftovers() error {
	for _, leaf := range placeholderLeaves {
		if err := b.pub.SubscribeRetained(b.opts.TopicPrefix+"/+/"+leaf, b.onMeterTopic); err != nil {
			return err
		}
	}
	return nil
}

// onMeterTopic notes a message under a placeholder, to be cleared by Run
// unless a meter really is known by that name (one whose answers carry no
// identification).
func (b *Bridge) onMeterTopic(topic string, payload []byte) {
	meter, _, _ := strings.Cut(strings.TrimPrefix(topic, b.opts.TopicPrefix+"/"), "/")
	if len(payload) == 0 || !strings.HasPrefix(meter, placeholderPrefix) {
		return
	}
	b.mu.Lock()
	b.leftovers[topic] = meter
	b.mu.Unlock()
}

// clearLeftovers deletes the retained placeholder topics noted so far with
// an empty retained message; those it cannot delete now are tried again
// in the next round.
func (b *Bridge) clearLeftovers(ctx context.Context, snap *poll.Snapshot) {
	b.mu.Lock()
	todo := b.leftovers
	b.leftovers = make(map[string]string)
	b.mu.Unlock()
	known := make(map[string]bool, len(snap.Meters))
	for _, m := range snap.Meters {
		if m.Identified {
			known[m.Meter] = true
		}
	}
	for topic, meter := range todo {
		if !known[meter] {
			if err := b.pub.Publish(ctx, topic, []byte{}, true); err != nil {
				b.logPublishError(err)
				b.mu.Lock()
				for t, m := range todo {
					if _, ok := b.leftovers[t]; !ok {
						b.leftovers[t] = m
					}
				}
				b.mu.Unlock()
				return
			}
			b.log.Info().Str("topic", topic).Msg("cleared a placeholder topic left by an earlier version")
		}
		delete(todo, topic)
	}
}
