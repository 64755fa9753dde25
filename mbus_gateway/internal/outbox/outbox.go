// Package outbox hands the store's outbox to the MQTT client in the
// client's own terms, so that neither package knows the other.
package outbox

import (
	"context"
	"errors"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// Outbox is the store as the MQTT client's outbox.
type Outbox struct{ *store.Store }

var _ mqtt.Outbox = Outbox{}

// Pending returns the store's rows after afterSeq, at most limit, as the
// client's rows; an undecodable row ends them with a *mqtt.RowError.
func (o Outbox) Pending(ctx context.Context, afterSeq int64, limit int) ([]mqtt.Row, error) {
	rows, err := o.Store.Pending(ctx, afterSeq, limit)
	out := make([]mqtt.Row, len(rows))
	for i, r := range rows {
		out[i] = mqtt.Row{Seq: r.Seq, Meter: r.Meter, Reading: r.Reading, Payload: r.Payload}
	}
	if re, ok := errors.AsType[*store.RowError](err); ok {
		err = &mqtt.RowError{Seq: re.Seq, Err: re.Err}
	}
	return out, err
}
