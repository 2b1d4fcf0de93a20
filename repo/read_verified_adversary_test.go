package repo

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestReadVerifiedAdversaryBoundaries: ReadVerified's verdict on a tree
// is Validate's for every single-byte change and every cut around the
// first piece boundary (where the validator stops and resumes mid-entry)
// and in the last entries (which only finish checks), with names of
// every length so entries straddle the boundary at every offset.
func TestReadVerifiedAdversaryBoundaries(t *testing.T) {
	var es []TreeEntry
	for i := 0; len(es) < 2200; i++ {
		var h Hash
		h[0], h[1] = byte(i>>8), byte(i)
		n := 1 + i%255
		es = append(es, TreeEntry{Kind: EntryKind(i % 2), Name: fmt.Sprintf("%05d%s", i, strings.Repeat("x", max(0, n-5))), Hash: h})
	}
	good, err := (&Tree{Entries: es}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(good) < readVerifiedPiece+1000 {
		t.Fatalf("tree of %d bytes: want more than one piece", len(good))
	}
	check := func(what string, p []byte) {
		t.Helper()
		want := Validate(KindTree, p)
		_, invalid, err := ReadVerified(HashObject(KindTree, p), KindTree, len(p), bytes.NewReader(p))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if fmt.Sprint(invalid) != fmt.Sprint(want) {
			t.Fatalf("%s: ReadVerified says %v, Validate %v", what, invalid, want)
		}
	}
	var positions []int
	for i := readVerifiedPiece - maxTreeEntry - 2; i < readVerifiedPiece+maxTreeEntry+2; i++ {
		positions = append(positions, i)
	}
	for i := len(good) - 2*maxTreeEntry; i < len(good); i++ {
		positions = append(positions, i)
	}
	positions = append(positions, 0, 1, 2, 3)
	for _, i := range positions {
		for _, b := range []byte{0, 0xff, good[i] + 1} {
			if b == good[i] {
				continue
			}
			p := slices.Clone(good)
			p[i] = b
			check(fmt.Sprintf("byte %d = %#x", i, b), p)
		}
		check(fmt.Sprintf("cut at %d", i), good[:i])
	}
	check("valid", good)
}
