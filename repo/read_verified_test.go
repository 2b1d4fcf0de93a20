package repo

import (
	"bytes"
	"errors"
	"io"
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
		got, err := ReadVerified(h, KindBlob, n, iotest.OneByteReader(bytes.NewReader(payload)))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got.Hash() != h || got.Kind() != KindBlob || !bytes.Equal(got.value, want.value) {
			t.Fatalf("%d bytes: ReadVerified differs from Verify", n)
		}
		if n == 0 {
			continue
		}
		bad := bytes.Clone(payload)
		bad[n/2] ^= 1
		if _, err := ReadVerified(h, KindBlob, n, bytes.NewReader(bad)); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("%d bytes, one flipped: %v, want ErrHashMismatch", n, err)
		}
		if _, err := ReadVerified(h, KindTree, n, bytes.NewReader(payload)); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("%d bytes as another kind: %v, want ErrHashMismatch", n, err)
		}
		if _, err := ReadVerified(h, KindBlob, n, bytes.NewReader(payload[:n-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes, one missing: %v, want io.ErrUnexpectedEOF", n, err)
		}
		boom := errors.New("connection reset")
		if _, err := ReadVerified(h, KindBlob, n, iotest.ErrReader(boom)); !errors.Is(err, boom) {
			t.Fatalf("%d bytes from a failing reader: %v, want its error", n, err)
		}
	}
	if _, err := ReadVerified(ZeroHash, Kind("bogus"), 1, bytes.NewReader([]byte{1})); err == nil {
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
	o, err := ReadVerified(h, KindBlob, len(payload), bytes.NewReader(payload))
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
