//go:build nodemo

package main

import (
	"context"
	"fmt"
	"io"
)

// cmdDemo stands in for `mbus-gateway demo` in builds without it, such as
// the add-on image: the demo's embedded MQTT broker would only cost the
// gateway memory there.
func cmdDemo(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mbus-gateway: this build has no demo (built with the nodemo tag); run it from the source: go run ./mbus_gateway demo")
	return 1
}
