package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// OptionError is one problem with one option. Load, Parse and Validate
// return them joined with errors.Join; find them with errors.As.
type OptionError struct {
	// Path names the option as in the file: "mqtt.port", "meters[2].address".
	Path string
	// Msg says what is wrong and what is allowed.
	Msg string
	// other is a second option the problem is about (the first of two
	// duplicates); a problem already reported there makes this one moot.
	other string
}

func (e *OptionError) Error() string { return e.Path + ": " + e.Msg }

// UnknownOptionError is a key the gateway does not know, in a file or as
// an MBUS_GATEWAY_ environment variable.
type UnknownOptionError struct {
	// Path is the key as written ("pol_interval", "mqtt.hots",
	// "meters[0].addrss") or, for the environment, the variable's name.
	Path string
	// Env is true when Path is an environment variable.
	Env bool
	// Suggestion is a known key close to Path, or "".
	Suggestion string
}

func (e *UnknownOptionError) Error() string {
	var b strings.Builder
	if e.Env {
		b.WriteString("unknown environment variable " + e.Path)
	} else {
		b.WriteString("unknown option " + strconv.Quote(e.Path))
	}
	if e.Suggestion != "" {
		b.WriteString(" (did you mean " + e.quoteSuggestion() + "?)")
	}
	return b.String()
}

func (e *UnknownOptionError) quoteSuggestion() string {
	if e.Env {
		return e.Suggestion
	}
	return strconv.Quote(e.Suggestion)
}

// SyntaxError is a file that is not valid JSON or YAML, with the position
// of the problem (Column is 0 when the parser does not tell it).
type SyntaxError struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Column == 0:
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: line %d, column %d: %s", e.File, e.Line, e.Column, e.Msg)
}

// suggest returns the candidate closest to s when it is close enough to be
// a typo (at most two edits, and fewer than half of s), else "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestDist && 2*d < utf8.RuneCountInString(s) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance of a and b: the
// edits are insert, delete, replace and swapping two neighbours, the usual
// typos. Keys are short; beyond 64 runes nothing is a typo of a key, so
// longer input is not compared.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// quote prints a user's string in a message, shortened when long so that
// one problem stays one readable line.
func quote(s string) string {
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "…"
	}
	return strconv.Quote(s)
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
