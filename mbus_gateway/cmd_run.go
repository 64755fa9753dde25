package main

import (
	"context"
	"fmt"
	"io"
)

func cmdRun(_ context.Context, _ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mbus-gateway: this command is not available yet")
	return 1
}
