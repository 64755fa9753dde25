// Package demo is the bus of `mbus-gateway demo`: seven simulated meters
// answering with real telegrams (heat, water, gas, electricity, a heat cost
// allocator, warm water, and a heat meter that needs three requests for
// all its records), embedded in the binary so that the demo needs no
// files. The telegrams' sources are in meters/LICENSE-NOTE.txt.
package demo

import (
	"embed"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// busFile describes the bus in the format of `mbus-gateway simulate --bus`.
const busFile = "demo.bus.yaml"

//go:embed demo.bus.yaml meters/*.hex
var files embed.FS

// Setup returns the demo bus: its options and meters.
func Setup() (sim.Setup, error) {
	data, err := files.ReadFile(busFile)
	if err != nil {
		return sim.Setup{}, fmt.Errorf("demo: %w", err)
	}
	s, err := sim.ParseBusFile(busFile, data, files)
	if err != nil {
		return sim.Setup{}, fmt.Errorf("demo: %w", err)
	}
	return s, nil
}
