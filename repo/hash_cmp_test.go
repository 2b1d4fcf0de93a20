package repo

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCompareHashes: CompareHashes orders hashes exactly as bytes.Compare
// orders their bytes (the store's key order), for hashes that differ in
// their first 8 bytes, only after them, and not at all.
func TestCompareHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var hs []Hash
	for range 2000 {
		var h Hash
		for i := range h {
			h[i] = byte(rng.IntN(256))
		}
		hs = append(hs, h)
		// Same first 8 bytes, different rest; and a byte flipped at each
		// position, so every position decides some comparison.
		g := h
		g[8+rng.IntN(24)] ^= 1 << rng.IntN(8)
		hs = append(hs, g)
		f := h
		f[rng.IntN(32)]++
		hs = append(hs, f, h)
	}
	for i := range hs {
		a, b := hs[i], hs[(i*7+3)%len(hs)]
		if got, want := CompareHashes(a, b), bytes.Compare(a[:], b[:]); got != want {
			t.Fatalf("CompareHashes(%x, %x) = %d, bytes.Compare says %d", a, b, got, want)
		}
		if CompareHashes(a, a) != 0 {
			t.Fatalf("CompareHashes(%x, itself) != 0", a)
		}
	}
	got := slices.SortedFunc(slices.Values(hs), CompareHashes)
	want := slices.SortedFunc(slices.Values(hs), func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Fatal("sorting by CompareHashes differs from sorting by bytes")
	}
}
