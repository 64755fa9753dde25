package logging

// Secret is a string that must not appear in logs or error messages, such
// as a password or an API token. It prints as "***" (or "" when empty)
// with fmt (%v, %+v, %s, %#v, also inside structs), encoding/json, YAML and
// zerolog (Stringer, Interface); convert it with string(s) only where the
// real value is needed, never in a log field.
type Secret string

const masked = "***"

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return `logging.Secret("` + s.String() + `")` }

// MarshalText masks the secret wherever text marshalling is used (JSON,
// YAML, zerolog's Interface).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
