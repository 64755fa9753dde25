// Package addon has no code of its own: its tests check the Home Assistant
// add-on packaging at the repository root against what the Supervisor and
// the public add-on linter accept, and against the daemon's options.
//
// Checked: config.yaml against the linter's JSON schema (testdata/addon-linter)
// and the linter's extra rules; the option schema's types, defaults and
// patterns; that the option names equal the daemon's; the translations (every
// option and field named and described in English and German, the network
// port described); that no second file named config.json/yaml/yml exists
// (the Supervisor would load it as one more add-on); run.sh (shellcheck, a
// single exec of the binary the Dockerfile installs); the Dockerfile (own
// FROM, labels, HEALTHCHECK on /health); apparmor.txt; the icons; the systemd
// unit (systemd-analyze verify when available); the standalone example file.
//
// Tests that need an external program (shellcheck, systemd-analyze) skip
// when it is missing, except with CI=true, where a missing program fails.
package addon
