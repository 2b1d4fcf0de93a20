package repo

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAdversaryCursorRandomReads: random read sequences through a
// read-only handle's View — ascending runs (dense, with absent hashes and
// repeats) broken by jumps back, Get, Has and Peek mixed, and Peeks
// nested up to three deep whose callbacks read on in ascending order —
// answer exactly what point lookups outside View answer, and a payload
// Peek lends stays byte-for-byte the same until its callback returns.
func TestAdversaryCursorRandomReads(t *testing.T) {
	r, stored, absent := cursorRepo(t, 2000)
	payload := map[Hash][]byte{}
	for _, h := range stored {
		_, p, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		payload[h] = p
	}
	all := append(append([]Hash(nil), stored...), absent...)
	slices.SortFunc(all, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		pos := rng.IntN(len(all))
		next := func() Hash {
			switch rng.IntN(20) {
			case 0:
				pos = rng.IntN(len(all)) // a jump, back or far ahead
			case 1:
				// the same hash again
			default:
				pos += 1 + rng.IntN(3)
			}
			pos %= len(all)
			return all[pos]
		}
		var read func(rd Reader, depth int) error
		read = func(rd Reader, depth int) error {
			h := next()
			want, ok := payload[h]
			switch rng.IntN(3) {
			case 0:
				kind, got, err := rd.Get(h)
				if errors.Is(err, ErrNotFound) && !ok {
					return nil
				}
				if err != nil || kind != KindBlob || !bytes.Equal(got, want) || !ok {
					return fmt.Errorf("Get %s: %s %q %v; want %v %q", h.Short(), kind, got, err, ok, want)
				}
			case 1:
				got, err := rd.Has(h)
				if err != nil || got != ok {
					return fmt.Errorf("Has %s: %v %v; want %v", h.Short(), got, err, ok)
				}
			default:
				err := Peek(rd, h, func(kind Kind, p []byte) error {
					if !ok || kind != KindBlob || !bytes.Equal(p, want) {
						return fmt.Errorf("Peek %s: %s %q; want %v %q", h.Short(), kind, p, ok, want)
					}
					before := bytes.Clone(p)
					if depth < 3 {
						for range rng.IntN(30) {
							if err := read(rd, depth+1); err != nil {
								return err
							}
						}
					}
					if !bytes.Equal(p, before) {
						return fmt.Errorf("payload of %s changed under nested reads: %q, was %q", h.Short(), p, before)
					}
					return nil
				})
				if errors.Is(err, ErrNotFound) && !ok {
					return nil
				}
				return err
			}
			return nil
		}
		err := r.View(func(rd Reader) error {
			for range 2000 {
				if err := read(rd, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
