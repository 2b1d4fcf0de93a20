package wire

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SafeText is how a whole message that may quote a peer (an error body, a
// name, a daemon's answer) appears on one line: printable text, spaces
// included, as it is; invalid UTF-8 as \xNN and every other rune (control
// bytes, newlines, bidi overrides) with its Go escape. A hostile peer can
// then neither forge a line of a log or an error nor drive a terminal.
// (replicate.DisplayName quotes a single name whole instead.)
func SafeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// printableMax is how many bytes of a peer's text Printable keeps.
const printableMax = 200

// Printable is SafeText for bytes a peer sent that may be long (an error
// body): surrounding white space trimmed, clipped to about 200 bytes
// (never inside a UTF-8 sequence) with "…" after.
func Printable(b []byte) string {
	b = bytes.TrimSpace(b)
	clipped := len(b) > printableMax
	if clipped {
		n := printableMax
		for n > printableMax-utf8.UTFMax && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	s := SafeText(string(b))
	if clipped {
		s += "…"
	}
	return s
}
