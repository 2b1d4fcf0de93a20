package replicate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DisplayName is how a name the primary sent (a zone, a branch, a tag)
// appears in messages: as it is when it is plain printable text, quoted
// with Go escapes when it holds anything else (control bytes, escape
// sequences, spaces, invalid UTF-8, bidi overrides). A hostile primary can
// then neither forge a line of an error nor drive a terminal. Every message
// that names a primary's ref goes through it: errors here, the CLI's output
// and the provider's diagnostics.
func DisplayName(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r == ' ' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// ShortHash is how a commit hash appears in messages: its first 12
// characters, through DisplayName (a hash can come from a hostile
// primary), or absent when there is none ("" = the ref does not exist).
func ShortHash(h, absent string) string {
	if h == "" {
		return absent
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return DisplayName(h)
}

// RefsDiff lists, in key order, the refs ("<zone>/<branch>" => hex) whose
// hashes differ between want and got, as "<ref>: <wantWord> <hash>, got
// <hash>", with absent for a ref one side lacks: the one message for "the
// replica is not what was planned" (zonegit_replica, zonegit_secondary, the
// secondary daemon).
func RefsDiff(want, got map[string]string, wantWord, absent string) string {
	all := maps.Clone(want)
	maps.Copy(all, got)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if w, g := want[k], got[k]; w != g {
			out = append(out, fmt.Sprintf("%s: %s %s, got %s", DisplayName(k), wantWord, ShortHash(w, absent), ShortHash(g, absent)))
		}
	}
	return strings.Join(out, "; ")
}
