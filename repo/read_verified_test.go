package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadVerified: an object read by ReadVerified, in pieces and across
// the pieces it hashes, is exactly what Verify makes of the same bytes
// (the stored copy's layout included) and stores the same; a payload that
// does not hash to its name is ErrHashMismatch, and a reader that ends
// early or fails is that reader's error, never an object.
func TestReadVerified(t *testing.T) {
	for _, n := range []int{0, 1, readVerifiedPiece - 1, readVerifiedPiece, 2*readVerifiedPiece + 17} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*31 + i>>9)
		}
		h := HashObject(KindBlob, payload)
		want, err := Verify(h, KindBlob, payload)
		if err != nil {
			t.Fatal(err)
		}
		// One byte per Read: pieces are filled by many reads.
		got, invalid, err := ReadVerified(h, KindBlob, n, iotest.OneByteReader(bytes.NewReader(payload)))
		if err != nil || fmt.Sprint(invalid) != fmt.Sprint(Validate(KindBlob, payload)) {
			t.Fatalf("%d bytes: %v; invalid %v, Validate %v", n, err, invalid, Validate(KindBlob, payload))
		}
		if got.Hash() != h || got.Kind() != KindBlob || !bytes.Equal(got.value, want.value) {
			t.Fatalf("%d bytes: ReadVerified differs from Verify", n)
		}
		if n == 0 {
			continue
		}
		bad := bytes.Clone(payload)
		bad[n/2] ^= 1
		if _, _, err := ReadVerified(h, KindBlob, n, bytes.NewReader(bad)); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("%d bytes, one flipped: %v, want ErrHashMismatch", n, err)
		}
		if _, _, err := ReadVerified(h, KindTree, n, bytes.NewReader(payload)); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("%d bytes as another kind: %v, want ErrHashMismatch", n, err)
		}
		if _, _, err := ReadVerified(h, KindBlob, n, bytes.NewReader(payload[:n-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes, one missing: %v, want io.ErrUnexpectedEOF", n, err)
		}
		boom := errors.New("connection reset")
		if _, _, err := ReadVerified(h, KindBlob, n, iotest.ErrReader(boom)); !errors.Is(err, boom) {
			t.Fatalf("%d bytes from a failing reader: %v, want its error", n, err)
		}
	}
	if _, _, err := ReadVerified(ZeroHash, Kind("bogus"), 1, bytes.NewReader([]byte{1})); err == nil {
		t.Fatal("an unknown kind was read")
	}
}

// TestReadVerifiedStores: what ReadVerified returns is what a batch
// stores and Get reads back.
func TestReadVerifiedStores(t *testing.T) {
	r, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	payload := bytes.Repeat([]byte("zonegit "), readVerifiedPiece/3)
	h := HashObject(KindBlob, payload)
	o, _, err := ReadVerified(h, KindBlob, len(payload), bytes.NewReader(payload)) // stored whether it decodes or not
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutVerified(o); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	kind, got, err := r.Get(h)
	if err != nil || kind != KindBlob || !bytes.Equal(got, payload) {
		t.Fatalf("stored %s %d bytes (%v), want the blob of %d bytes", kind, len(got), err, len(payload))
	}
}

// TestReadVerifiedValidates: the verdict ReadVerified reaches on a tree
// while its bytes arrive (pieces of any size, entries across pieces) is
// Validate's on the whole payload, error text included, for valid trees
// and for every kind of broken one; other kinds get Validate's verdict
// too.
func TestReadVerifiedValidates(t *testing.T) {
	var es []TreeEntry
	for i := range 9000 { // ~400 KB: more than one piece
		var h Hash
		h[0], h[1] = byte(i>>8), byte(i)
		es = append(es, TreeEntry{Kind: EntryLeaf, Name: fmt.Sprintf("name%05d", i), Hash: h})
	}
	good, err := (&Tree{Entries: es}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The same with an entry of the longest name last.
	last := TreeEntry{Kind: EntryLeaf, Name: strings.Repeat("z", 255)}
	long, err := (&Tree{Entries: append(slices.Clone(es), last)}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	at := func(p []byte, i int, b byte) []byte { p = slices.Clone(p); p[i] = b; return p }
	it, err := newTreeIter(ZeroHash, good)
	if err != nil {
		t.Fatal(err)
	}
	entry := it.off + 4500*(2+9+32) // the kind byte of an entry in the middle
	cases := map[string][]byte{
		"valid":             good,
		"longest name":      long,
		"empty":             {},
		"version":           at(good, 0, 2),
		"trailing":          append(slices.Clone(good), 0),
		"truncated":         good[:len(good)-1],
		"cut in the middle": good[:entry+20],
		"corrupt middle":    at(good, entry, 0xff),
		"out of order":      swapEntries(t, good, 100),
	}
	for name, p := range cases {
		want := Validate(KindTree, p)
		if name == "valid" || name == "longest name" {
			if want != nil {
				t.Fatalf("%s: %v", name, want)
			}
		} else if want == nil {
			t.Fatalf("%s: the case is a valid tree", name)
		}
		h := HashObject(KindTree, p)
		for _, rd := range []func([]byte) io.Reader{
			func(b []byte) io.Reader { return bytes.NewReader(b) },
			func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		} {
			_, invalid, err := ReadVerified(h, KindTree, len(p), rd(p))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if fmt.Sprint(invalid) != fmt.Sprint(want) {
				t.Fatalf("%s: ReadVerified says %v, Validate %v", name, invalid, want)
			}
		}
	}
	blob := []byte("\xff not a blob")
	if _, invalid, err := ReadVerified(HashObject(KindBlob, blob), KindBlob, len(blob), bytes.NewReader(blob)); err != nil || fmt.Sprint(invalid) != fmt.Sprint(Validate(KindBlob, blob)) {
		t.Fatalf("blob: %v %v, Validate %v", err, invalid, Validate(KindBlob, blob))
	}
}

// swapEntries swaps tree entries i and i+1 of an encoded tree of
// same-length entries (so their bytes swap in place).
func swapEntries(t *testing.T, p []byte, i int) []byte {
	t.Helper()
	tr, err := DecodeTree(p)
	if err != nil {
		t.Fatal(err)
	}
	es := slices.Clone(tr.Entries)
	es[i], es[i+1] = es[i+1], es[i]
	q := slices.Clone(p)
	// Re-encode by hand: Encode would sort.
	it, err := newTreeIter(ZeroHash, q)
	if err != nil {
		t.Fatal(err)
	}
	off := it.off
	for _, e := range es {
		q[off], q[off+1] = byte(e.Kind), byte(len(e.Name))
		off += 2 + copy(q[off+2:], e.Name)
		off += copy(q[off:], e.Hash[:])
	}
	return q
}

// TestHashObjectAllocatesNothing: hashing an object (once per object
// received, 2,000,000 times in a 1M-record pull) keeps its digest on the
// stack.
func TestHashObjectAllocatesNothing(t *testing.T) {
	p := make([]byte, 100)
	if n := testing.AllocsPerRun(100, func() { _ = HashObject(KindBlob, p) }); n != 0 {
		t.Fatalf("HashObject allocates %v times", n)
	}
}
