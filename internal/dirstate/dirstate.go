// Package dirstate records what a directory holds, byte for byte, so a test
// can prove that an operation (a read-only open, a plan, fsck) changed
// nothing in it: not a file added, removed, resized or rewritten.
package dirstate

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Listing is one line per entry of dir, in name order: its name and, for a
// regular file, its size and SHA-256. Two listings are equal exactly when
// the directory's entries and file contents are.
func Listing(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name())
		if e.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatalf("read %s: %v", filepath.Join(dir, e.Name()), err)
			}
			fmt.Fprintf(&b, " %d %x", len(data), sha256.Sum256(data))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Unchanged fails the test unless dir still holds what before (a Listing)
// recorded; what names the operation in the message.
func Unchanged(t testing.TB, what, dir, before string) {
	t.Helper()
	if after := Listing(t, dir); after != before {
		t.Errorf("%s changed %s:\nbefore:\n%safter:\n%s", what, dir, before, after)
	}
}
