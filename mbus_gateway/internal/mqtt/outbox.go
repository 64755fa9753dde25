package mqtt

import (
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Row is one reading waiting in the outbox.
type Row struct {
	// Seq orders the outbox; Delete takes it once the broker acknowledged
	// the row.
	Seq   int64
	Meter string
	// Reading is the reading; Payload its JSON, published as is when not
	// empty.
	Reading reading.Reading
	Payload []byte
}

// RowError is what Pending returns, after the rows before it, for a row
// that cannot be decoded: the client deletes it to get past it.
type RowError struct {
	Seq int64
	Err error
}

// Error names the row.
func (e *RowError) Error() string { return fmt.Sprintf("outbox row %d: %v", e.Seq, e.Err) }

// Unwrap gives the decoding error.
func (e *RowError) Unwrap() error { return e.Err }
