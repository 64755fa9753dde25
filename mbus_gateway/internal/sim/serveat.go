package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
)

// ServeAt serves the bus at where until ctx ends: "pty" for a
// pseudo-terminal (with link, if not "", a symbolic link to its device),
// or "tcp://HOST:PORT" as a converter would. Once it is reachable it
// writes to w where, and which meters are on the bus, as `mbus-gateway
// simulate` prints it.
func (b *Bus) ServeAt(ctx context.Context, where, link string, w io.Writer) error {
	if where == "pty" {
		p, err := b.OpenPTY(ctx, link)
		if err != nil {
			return err
		}
		defer p.Close()
		b.describe(w, p.Path())
		<-ctx.Done()
		return nil
	}
	addr, ok := strings.CutPrefix(where, "tcp://")
	if !ok {
		return fmt.Errorf("sim: serve at %q: want tcp://HOST:PORT or pty", where)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b.describe(w, "tcp://"+ln.Addr().String())
	return b.ServeTCP(ctx, ln)
}

// describe says where the bus is served and which meters are on it.
func (b *Bus) describe(w io.Writer, where string) {
	fmt.Fprintf(w, "listening on %s\n", where)
	for _, m := range b.Meters() {
		fmt.Fprintf(w, "  primary %3d  secondary %s  telegrams %d  %s\n", m.Primary, m.Secondary, m.Telegrams, m.Name)
	}
}
