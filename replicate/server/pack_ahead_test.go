package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// packedFrame is one frame a pack response sent.
type packedFrame struct {
	h       repo.Hash
	kind    repo.Kind
	payload string
}

// packPlain is the pack response's framing before the read-ahead: each
// sorted batch read blob by blob, in place, as it closes. It is the
// reference packAhead must match byte for byte, error for error.
func packPlain(rd repo.Reader, roots, known []repo.Hash, frame func(repo.Hash, repo.Kind, []byte) error) error {
	var blobs []repo.Hash
	pf := &peekFramer{rd: rd, frame: frame}
	sendBlobs := func() error {
		slices.SortFunc(blobs, func(a, b repo.Hash) int { return bytes.Compare(a[:], b[:]) })
		for _, h := range blobs {
			if err := pf.send(h, repo.KindBlob); err != nil {
				return err
			}
		}
		blobs = blobs[:0]
		return nil
	}
	_, err := walk.Missing(rd, roots, known, walk.Options{}, func(h repo.Hash, kind repo.Kind, payload []byte) error {
		switch {
		case payload != nil:
			return frame(h, kind, payload)
		case kind == repo.KindBlob:
			blobs = append(blobs, h)
			if len(blobs) < packBlobBatch {
				return nil
			}
			return sendBlobs()
		}
		return pf.send(h, kind)
	})
	if err == nil {
		err = sendBlobs()
	}
	return err
}

// packWithAhead is handlePack's framing (packAhead).
func packWithAhead(rd repo.Reader, roots, known []repo.Hash, frame func(repo.Hash, repo.Kind, []byte) error) error {
	pa := newPackAhead(rd, frame)
	defer pa.release()
	_, err := walk.Missing(rd, roots, known, walk.Options{}, pa.emit)
	if err == nil {
		return pa.finish()
	}
	return pa.abandon(err)
}

// runPack runs one framing over a read-only handle's View through the
// server's cached reader, and returns the frames and the error that ended
// the stream ("" for a complete one).
func runPack(t *testing.T, s *Server, r *repo.Repo, roots, known []repo.Hash,
	pack func(repo.Reader, []repo.Hash, []repo.Hash, func(repo.Hash, repo.Kind, []byte) error) error,
) ([]packedFrame, string) {
	t.Helper()
	var frames []packedFrame
	var end string
	err := r.View(func(rd repo.Reader) error {
		err := pack(s.reader(rd), roots, known, func(h repo.Hash, kind repo.Kind, p []byte) error {
			frames = append(frames, packedFrame{h, kind, string(p)})
			return nil
		})
		if err != nil {
			end = err.Error()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return frames, end
}

// TestPackAheadMatchesPlainReads: on random stores (flat and grouped
// zones, history, several branches), some of whose blobs are absent,
// stored as another kind or stored as a value that does not decode,
// packAhead sends exactly the frames the plain framing sends, in the same
// order, and stops with the same error after the same frames — whatever
// its bounds: batches of a few blobs, sweeps over one or many batches,
// budgets that run out in the middle of a queue or of a sweep, objects too
// large to copy.
func TestPackAheadMatchesPlainReads(t *testing.T) {
	saved := []int{packBlobBatch, packAheadBlobs, packAheadBytes, packAheadMaxObject}
	t.Cleanup(func() {
		packBlobBatch, packAheadBlobs, packAheadBytes, packAheadMaxObject = saved[0], saved[1], saved[2], saved[3]
	})
	bounds := []struct{ batch, ahead, bytes, maxObject int }{
		{saved[0], saved[1], saved[2], saved[3]}, // as served
		{7, 21, 1 << 20, 1 << 20},                // sweeps of three batches
		{7, 7, 1 << 20, 1 << 20},                 // one batch a sweep
		{5, 1000, 2500, 1 << 20},                 // budgets run out
		{11, 40, 1 << 20, 45},                    // most blobs too large to copy
		{64, 300, 9000, 100},
	}
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		r, reqs := randomPackStore(t, rng, seed >= 3)
		s := &Server{}
		for _, q := range reqs {
			packBlobBatch, packAheadBlobs, packAheadBytes, packAheadMaxObject = saved[0], saved[1], saved[2], saved[3]
			for _, b := range bounds {
				packBlobBatch, packAheadBlobs, packAheadBytes, packAheadMaxObject = b.batch, b.ahead, b.bytes, b.maxObject
				want, wantEnd := runPack(t, s, r, q.roots, q.known, packPlain)
				got, gotEnd := runPack(t, s, r, q.roots, q.known, packWithAhead)
				name := fmt.Sprintf("seed %d %s, bounds %+v", seed, q.name, b)
				if gotEnd != wantEnd {
					t.Fatalf("%s: stream ends with %q, want %q", name, gotEnd, wantEnd)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: frame %d is %s %s (%d bytes), want %s %s (%d bytes)", name, i,
							got[i].kind, got[i].h.Short(), len(got[i].payload), want[i].kind, want[i].h.Short(), len(want[i].payload))
					}
				}
				if wantEnd != "" && b == bounds[1] {
					t.Logf("%s: %d frames, then %s", name, len(want), wantEnd)
				}
				if q.damaged && wantEnd == "" {
					t.Fatalf("%s: a pack reaching damaged objects completed", name)
				}
				if !q.damaged && wantEnd != "" {
					t.Fatalf("%s: %s", name, wantEnd)
				}
			}
		}
	}
}

type packRequest struct {
	name         string
	roots, known []repo.Hash
	damaged      bool // reaches a damaged object
}

// randomPackStore writes a random store (two zones, history on two
// branches), damages blobs of the second zone when damage is set (absent,
// stored as a tree, a value without a kind), and opens it read-only, as
// serve does. It returns the requests to compare: full, incremental and
// several roots.
func randomPackStore(t *testing.T, rng *rand.Rand, damage bool) (*repo.Repo, []packRequest) {
	t.Helper()
	dir := t.TempDir()
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(h repo.Hash, err error) repo.Hash {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	zones := []string{"a.test.", "b.test."}
	var first, tips []repo.Hash
	for i, z := range zones {
		fanout := 0
		if rng.IntN(2) == 1 {
			fanout = 3 + rng.IntN(20)
		}
		first = append(first, must(repotest.Synthetic(w, repotest.SyntheticOptions{Zone: z, N: 150 + rng.IntN(400) + 300*i, Fanout: fanout})))
		if err := w.UpdateBranch(z, "canary", repo.ZeroHash, first[i], nil); err != nil {
			t.Fatal(err)
		}
		var tip repo.Hash
		for range 1 + rng.IntN(4) {
			name := "h" + strconv.Itoa(rng.IntN(900))
			if fanout > 0 {
				name = "n" + strconv.Itoa(rng.IntN(50))
			}
			tip = must(repotest.SetA(w, z, "main", []string{name}, uint32(60+rng.IntN(600)), [4]byte{192, 0, 2, byte(rng.IntN(256))}))
		}
		must(repotest.SetA(w, z, "canary", []string{"www"}, 300, [4]byte{198, 51, 100, byte(i)}))
		tips = append(tips, tip)
	}
	canary := func(z string) repo.Hash { return must(w.Branch(z, "canary")) }
	reqs := []packRequest{
		{name: "full a", roots: []repo.Hash{tips[0]}},
		{name: "incremental a", roots: []repo.Hash{tips[0]}, known: []repo.Hash{first[0]}},
		{name: "two roots a", roots: []repo.Hash{canary("a.test."), tips[0]}},
		{name: "full b", roots: []repo.Hash{tips[1]}, damaged: damage},
		{name: "all", roots: []repo.Hash{tips[1], tips[0], canary("b.test.")}, damaged: damage},
		{name: "incremental b", roots: []repo.Hash{tips[1]}, known: []repo.Hash{canary("b.test.")}},
	}
	// The blobs of zone b that zone a's and the incremental requests do
	// not reach: damage only those.
	spared := map[repo.Hash]bool{}
	for _, q := range []packRequest{reqs[0], reqs[1], reqs[2], reqs[5]} {
		err := w.View(func(rd repo.Reader) error {
			_, err := walk.Missing(rd, q.roots, q.known, walk.Options{}, func(h repo.Hash, _ repo.Kind, _ []byte) error {
				spared[h] = true
				return nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var victims, trees []repo.Hash
	err = w.View(func(rd repo.Reader) error {
		_, err := walk.Missing(rd, []repo.Hash{tips[1]}, nil, walk.Options{}, func(h repo.Hash, kind repo.Kind, p []byte) error {
			switch {
			case spared[h]:
			case kind == repo.KindBlob:
				victims = append(victims, h)
			case kind == repo.KindTree && len(p) < 100:
				trees = append(trees, h) // a name's tree
			}
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if damage {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(txn *badger.Txn) error {
			for i, j := range rng.Perm(len(victims))[:9] {
				key := append([]byte("o/"), victims[j][:]...)
				switch i % 3 {
				case 0:
					if err := txn.Delete(key); err != nil {
						return err
					}
				case 1:
					if err := txn.Set(key, []byte("tree\x00")); err != nil {
						return err
					}
				default:
					if err := txn.Set(key, []byte("no kind here")); err != nil {
						return err
					}
				}
			}
			// Trees the walk reads: it fails there, with blobs of earlier
			// batches (damaged ones among them) still queued.
			for i, j := range rng.Perm(len(trees))[:2] {
				key := append([]byte("o/"), trees[j][:]...)
				if i == 0 {
					if err := txn.Delete(key); err != nil {
						return err
					}
				} else if err := txn.Set(key, []byte("no kind here")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, reqs
}
