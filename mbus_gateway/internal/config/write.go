package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes an options file. It holds the broker password, so only
// its owner may read it: it is written as a new file (mode 0600) in
// path's directory and renamed over path, so that the wider mode of a
// file already there never applies to it.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path) //nolint:gosec // G703: the path is the operator's own
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
