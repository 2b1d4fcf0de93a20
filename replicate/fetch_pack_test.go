package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// clientFrame is one frame of the object stream, spelled out by hand.
func clientFrame(kind repo.Kind, payload string) string {
	h := repo.HashObject(kind, []byte(payload))
	return h.String() + " " + string(kind) + " " + strconv.Itoa(len(payload)) + "\n" + payload
}

// emptyStore is a local store that holds nothing.
type emptyStore struct{}

func (emptyStore) Get(h repo.Hash) (repo.Kind, []byte, error) {
	return "", nil, fmt.Errorf("object %s: %w", h, repo.ErrNotFound)
}
func (emptyStore) Has(repo.Hash) (bool, error) { return false, nil }

// sinkBatch takes what a pack stream fuzz input stores. The fuzzer needs
// an input to behave the same every time to minimise it, and a store's
// background goroutines would make its coverage differ from run to run;
// TestPackStreamSeedAccepted checks that accepted objects reach a real
// store.
// Like repo.Batch, it takes only objects repo.Verify checked.
type sinkBatch struct{ n int }

func (b *sinkBatch) PutVerified(repo.Verified) error {
	b.n++
	return nil
}
func (b *sinkBatch) Count() (int, int64) { return b.n, 0 }
func (b *sinkBatch) Flush() error        { return nil }
func (b *sinkBatch) Cancel()             {}

// packSeed is a real pack stream: a small zone, and a second commit on it,
// framed as the server frames them, in Walk's order.
func packSeed(f testing.TB) []byte {
	r, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if _, err := repotest.SyntheticZone(r, "example.com.", "main", 4); err != nil {
		f.Fatal(err)
	}
	tip, err := repotest.SetA(r, "example.com.", "main", []string{"www"}, 60, [4]byte{192, 0, 2, 1})
	if err != nil {
		f.Fatal(err)
	}
	var out []byte
	_, err = walk.Missing(r, []repo.Hash{tip}, nil, walk.Options{}, func(h repo.Hash, kind repo.Kind, payload []byte) error {
		if payload == nil {
			if kind, payload, err = r.Get(h); err != nil {
				return err
			}
		}
		out = append(out, h.String()+" "+string(kind)+" "+strconv.Itoa(len(payload))+"\n"...)
		out = append(out, payload...)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	return out
}

// FuzzClientPackStream feeds arbitrary bytes to the client's pack stream
// decoding (frame parser and receive, with the first frame's object as
// the root a branch asked for). Whatever the bytes, it never panics, and
// everything it accepts is an object it may store: hashing to its name,
// decoding strictly as its kind, accepted once, and either the root (a
// commit or a tag) or linked, with a kind the link allows, by an object
// accepted before it. The stream stops at the first object that breaks a
// rule.
func FuzzClientPackStream(f *testing.F) {
	seed := packSeed(f)
	f.Add(seed)
	f.Add(append(slices.Clone(seed), clientFrame(repo.KindBlob, "junk")...))
	f.Add([]byte(clientFrame(repo.KindBlob, "\x01\x03www\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x00")))
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &puller{c: &Client{}, local: emptyStore{}, ctx: context.Background(), batch: &sinkBatch{}, got: received{},
			actual: map[repo.Hash]repo.Kind{},
			pack:   &packState{bases: map[repo.Hash]repo.Hash{}}}
		fr := wire.NewFrameReader(bytes.NewReader(data), 1<<20)
		linked := map[repo.Hash]kindSet{} // the test's own account of what may come
		accepted := 0
		seen := map[repo.Hash]bool{}
		links := 0
		for first := true; ; first = false {
			h, kind, payload, err := fr.Next()
			if err != nil {
				break
			}
			if first {
				p.got.setWanted(h, setCommit|setTag)
				linked[h] = setCommit | setTag
			}
			payload = slices.Clone(payload)
			if err := p.receive(h, kind, payload); err != nil {
				var ff *fatalFetch
				if errors.As(err, &ff) {
					t.Fatalf("store failed: %v", err)
				}
				break // the stream is stopped
			}
			if repo.HashObject(kind, payload) != h {
				t.Fatalf("accepted %s, which does not hash to its name", h.Short())
			}
			if err := decodeObject(h, kind, payload); err != nil {
				t.Fatalf("accepted an object that does not decode: %v", err)
			}
			if seen[h] {
				t.Fatalf("accepted %s twice", h.Short())
			}
			seen[h] = true
			if !linked[h].has(kind) {
				t.Fatalf("accepted %s as a %s, which no root or earlier object allows (%s)", h.Short(), kind, linked[h])
			}
			ls, err := repo.Links(kind, payload)
			if err != nil {
				t.Fatalf("accepted %s, whose links do not decode: %v", h.Short(), err)
			}
			for _, l := range ls {
				linked[l.Hash] |= kindBit(l.Kind)
			}
			links += len(ls)
			accepted++
		}
		if accepted > links+1 {
			t.Fatalf("accepted %d objects, more than the %d links and the root", accepted, links)
		}
	})
}

// TestPackStreamSeedAccepted: the real stream FuzzClientPackStream starts
// from is accepted whole, so the fuzzer mutates a stream that reaches
// every kind of object rather than one stopped at its first frame.
func TestPackStreamSeedAccepted(t *testing.T) {
	seed := packSeed(t)
	local, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = local.Close() }()
	batch, err := local.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	p := &puller{c: &Client{Local: local}, local: local, ctx: context.Background(), batch: batch, got: received{},
		actual: map[repo.Hash]repo.Kind{},
		pack:   &packState{bases: map[repo.Hash]repo.Hash{}}}
	fr := wire.NewFrameReader(bytes.NewReader(seed), 1<<20)
	n := 0
	var got []repo.Hash
	for {
		h, kind, payload, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			p.got.setWanted(h, setCommit)
		}
		if err := p.receive(h, kind, payload); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		got = append(got, h)
		n++
	}
	if n < 10 || p.got.wanted != 0 {
		t.Fatalf("%d frames accepted, %d links left wanted", n, p.got.wanted)
	}
	if err := p.batch.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, h := range got {
		if ok, err := local.Has(h); !ok || err != nil {
			t.Fatalf("accepted %s is not stored: %v", h.Short(), err)
		}
	}
}
