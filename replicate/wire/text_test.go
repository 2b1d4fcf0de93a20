package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPrintable: a peer's error body reaches a message on one line, with
// nothing a terminal would act on (escape sequences, newlines, bidi
// overrides, invalid UTF-8), escaped the way SafeText escapes names, and
// clipped without cutting a rune.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  plain text, kept  \n", "plain text, kept"},
		{"red \x1b[31mALERT\x1b[0m", `red \x1b[31mALERT\x1b[0m`},
		{"line one\nline two\r\n", `line one\nline two`},
		{"rtl \u202egnp.exe", `rtl \u202egnp.exe`},
		{"bad \xff byte", `bad \xff byte`},
		{"tab\there", `tab\there`},
	} {
		if got := Printable([]byte(tc.in)); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 150) // 300 bytes of two-byte runes
	got := Printable([]byte(long))
	if !strings.HasSuffix(got, "…") || !utf8.ValidString(got) || strings.Contains(got, `\x`) ||
		len(got) > printableMax+len("…") {
		t.Errorf("clipped %d bytes to %q (%d bytes)", len(long), got, len(got))
	}
}
