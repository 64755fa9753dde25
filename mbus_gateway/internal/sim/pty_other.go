//go:build !linux

package sim

import (
	"errors"
	"os"
)

// makeRaw is only implemented for Linux, where the gateway runs.
func makeRaw(*os.File) error { return errors.New("pseudo-terminals are only supported on Linux") }

// termiosBaud cannot tell the speed here.
func termiosBaud(*os.File) int { return 0 }

// unreadBytes cannot tell here.
func unreadBytes(*os.File) int { return 0 }
