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

// TestSortByHash: SortByHash sorts as a comparison sort by bytes.Compare
// does, small and large slices, with runs sharing their first 4 bytes and
// more (as a store's hashes never do, but a hostile store could), and
// carries each element with its hash.
func TestSortByHash(t *testing.T) {
	type elem struct {
		h Hash
		i int
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 2, 100, 255, 256, 257, 1000, 20000} {
		var es []elem
		for i := range n {
			var h Hash
			for j := range h {
				h[j] = byte(rng.IntN(256))
			}
			switch rng.IntN(8) {
			case 0: // shares the first 4 bytes of an earlier one
				if i > 0 {
					copy(h[:4], es[rng.IntN(i)].h[:4])
				}
			case 1: // shares the first 12
				if i > 0 {
					copy(h[:12], es[rng.IntN(i)].h[:12])
				}
			case 2: // small first bytes, many alike
				h[0], h[1] = 0, byte(rng.IntN(3))
			}
			es = append(es, elem{h, i})
		}
		want := slices.Clone(es)
		slices.SortStableFunc(want, func(a, b elem) int { return bytes.Compare(a.h[:], b.h[:]) })
		got := slices.Clone(es)
		SortByHash(got, func(e *elem) *Hash { return &e.h })
		for i := range want {
			if got[i].h != want[i].h || es[got[i].i].h != got[i].h {
				t.Fatalf("n=%d: element %d is %x (was %d), want %x", n, i, got[i].h, got[i].i, want[i].h)
			}
		}
	}
}
