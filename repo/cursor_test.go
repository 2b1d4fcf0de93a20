package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestViewSortedAnswersAsView: whatever the order of the lookups (one
// ascending sequence, two interleaved, random, repeats, absent hashes
// between and beyond the stored ones), ViewSorted's Reader answers exactly
// as View's, with objects written in several batches.
func TestViewSortedAnswersAsView(t *testing.T) {
	r, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stored []Hash
	for round := 0; round < 3; round++ {
		b, err := r.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4000; i++ {
			var p [12]byte
			binary.BigEndian.PutUint32(p[:], uint32(round*4000+i))
			h, err := b.PutObject(KindBlob, p[:])
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, h)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var absent []Hash
	for i := 0; i < 3000; i++ {
		var h Hash
		for j := range h {
			h[j] = byte(rng.UintN(256))
		}
		absent = append(absent, h)
	}
	absent = append(absent, ZeroHash, Hash{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	all := append(slices.Clone(stored), absent...)
	asc := slices.Clone(all)
	slices.SortFunc(asc, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	dense := slices.Clone(stored)
	slices.SortFunc(dense, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	// Two ascending sequences interleaved: every other stored hash, and
	// the absent ones.
	var inter []Hash
	for i := 0; i < len(dense) || i < len(absent); i++ {
		if i < len(dense) && i%2 == 0 {
			inter = append(inter, dense[i])
		}
		if i < len(absent) {
			inter = append(inter, absent[i])
		}
	}
	shuffled := slices.Clone(all)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	orders := map[string][]Hash{"ascending": asc, "dense": dense, "interleaved": inter, "random": shuffled,
		"repeats": append(slices.Clone(dense[:500]), dense[:500]...)}

	for name, order := range orders {
		var found, missing int
		err := r.View(func(want Reader) error {
			return r.ViewSorted(func(got Reader) error {
				for _, h := range order {
					wk, wp, werr := want.Get(h)
					gk, gp, gerr := got.Get(h)
					if (werr == nil) != (gerr == nil) || errors.Is(werr, ErrNotFound) != errors.Is(gerr, ErrNotFound) ||
						wk != gk || !bytes.Equal(wp, gp) {
						t.Fatalf("%s: Get(%s) = %s %x %v; View says %s %x %v", name, h.Short(), gk, gp, gerr, wk, wp, werr)
					}
					wh, _ := want.Has(h)
					gh, err := got.Has(h)
					if err != nil || wh != gh {
						t.Fatalf("%s: Has(%s) = %v, %v; View says %v", name, h.Short(), gh, err, wh)
					}
					if werr == nil {
						found++
					} else {
						missing++
					}
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if found == 0 || (name != "dense" && name != "repeats" && missing == 0) {
			t.Errorf("%s: %d found, %d missing: the order does not exercise both", name, found, missing)
		}
	}
}
