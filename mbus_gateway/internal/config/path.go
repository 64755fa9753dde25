package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// AddonOptions is where the Supervisor writes the add-on's options,
// validated against config.yaml, before every start.
const AddonOptions = "/data/options.json"

// ErrNoOptions is the error of Path without a file outside the add-on.
var ErrNoOptions = errors.New("no options: give --config FILE (" + AddonOptions + " does not exist, so this is not the add-on)")

// Path picks the options file: the one given, else the add-on's.
func Path(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if _, err := os.Stat(AddonOptions); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", ErrNoOptions
		}
		return "", fmt.Errorf("options: %w", err)
	}
	return AddonOptions, nil
}
