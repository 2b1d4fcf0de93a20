package server

import (
	"bytes"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate/walk"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

func TestBigObjectCache(t *testing.T) {
	c := newBigObjectCache(1000, 100)
	obj := func(i byte, n int) (repo.Hash, []byte) {
		p := bytes.Repeat([]byte{i}, n)
		return repo.HashObject(repo.KindTree, p), p
	}
	small, sp := obj(1, 99)
	c.add(small, repo.KindTree, sp)
	if _, _, ok := c.get(small); ok {
		t.Error("object below the size threshold was cached")
	}
	var hs []repo.Hash
	for i := byte(0); i < 4; i++ {
		h, p := obj(10+i, 300)
		c.add(h, repo.KindTree, p)
		hs = append(hs, h)
	}
	// 4 x 300 > 1000: the least recently used one was evicted.
	if _, _, ok := c.get(hs[0]); ok {
		t.Error("oldest entry not evicted")
	}
	for _, h := range hs[1:] {
		if k, p, ok := c.get(h); !ok || k != repo.KindTree || repo.HashObject(k, p) != h {
			t.Errorf("entry %s: ok=%v", h.Short(), ok)
		}
	}
	if c.used > c.max {
		t.Errorf("cache holds %d bytes, max %d", c.used, c.max)
	}
	big, bp := obj(9, 600) // more than half the cache: never kept
	c.add(big, repo.KindTree, bp)
	if _, _, ok := c.get(big); ok {
		t.Error("object larger than half the cache was kept")
	}
}

// TestServerCacheServesWalks: a second identical walk through the server
// reads the large apex tree from the cache and answers the same.
func TestServerCacheServesWalks(t *testing.T) {
	r := repotest.MemRepo(t)
	c0, err := repotest.SyntheticZone(r, "example.com.", "main", 20000) // apex tree of about 800 KB
	if err != nil {
		t.Fatal(err)
	}
	c1, err := repotest.SetA(r, "example.com.", "main", []string{"h7"}, 60, [4]byte{192, 0, 2, 99})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	var first, second map[repo.Hash]repo.Kind
	for i, dst := range []*map[repo.Hash]repo.Kind{&first, &second} {
		got := map[repo.Hash]repo.Kind{}
		err := r.View(func(rd repo.Reader) error {
			_, err := walk.Missing(s.reader(rd), []repo.Hash{c1}, []repo.Hash{c0}, walk.Options{}, func(h repo.Hash, k repo.Kind, _ []byte) error {
				got[h] = k
				return nil
			})
			return err
		})
		if err != nil {
			t.Fatalf("walk %d: %v", i, err)
		}
		*dst = got
	}
	if len(first) != 4 || len(second) != len(first) {
		t.Fatalf("walks reported %d and %d objects, want 4 each", len(first), len(second))
	}
	for h := range first {
		if _, ok := second[h]; !ok {
			t.Errorf("second walk lacks %s", h.Short())
		}
	}
	if s.cache.hits < 2 {
		t.Errorf("%d cache hits on the second walk, want the two apex trees", s.cache.hits)
	}
}

// TestCachedReaderNestedPeeks: a Peek inside another's callback (a walk
// reads a tree's bases while it holds the tree) gets its own object, the
// outer callback still gets its own afterwards, and each large object is
// cached under its own hash.
func TestCachedReaderNestedPeeks(t *testing.T) {
	r := repotest.MemRepo(t)
	var hs []repo.Hash
	for i := range 3 {
		h, err := r.PutObject(repo.KindBlob, bytes.Repeat([]byte{byte('a' + i)}, 200))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	c := newBigObjectCache(10000, 100)
	err := r.View(func(rd repo.Reader) error {
		cr := &cachedReader{Reader: rd, c: c}
		var peek func(depth int) error
		peek = func(depth int) error {
			return cr.Peek(hs[depth], func(k repo.Kind, p []byte) error {
				if repo.HashObject(k, p) != hs[depth] {
					t.Errorf("depth %d: got another object", depth)
				}
				if depth+1 < len(hs) {
					if err := peek(depth + 1); err != nil {
						return err
					}
				}
				if repo.HashObject(k, p) != hs[depth] {
					t.Errorf("depth %d: payload changed under a nested Peek", depth)
				}
				return nil
			})
		}
		return peek(0)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if k, p, ok := c.get(h); !ok || repo.HashObject(k, p) != h {
			t.Errorf("%s: cached %v, under the wrong hash or not at all", h.Short(), ok)
		}
	}
}

// TestCacheSkipsPayloadsLentInPlace: a Peek does not copy into the cache
// a payload the store lends in place from its value log (repo.LentInPlace:
// reading it there again is as cheap), but does cache a large one the store
// copies out of its tables; both reach the callback intact, and a Get still
// caches what it copied.
func TestCacheSkipsPayloadsLentInPlace(t *testing.T) {
	r, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inPlace, err := r.PutObject(repo.KindBlob, bytes.Repeat([]byte{'v'}, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := r.PutObject(repo.KindBlob, bytes.Repeat([]byte{'t'}, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	if !repo.LentInPlace(repo.KindBlob, 1<<20) || repo.LentInPlace(repo.KindBlob, 300<<10) {
		t.Fatal("LentInPlace: 1 MiB should be lent in place, 300 KiB not")
	}
	c := newBigObjectCache(64<<20, 256<<10)
	err = r.View(func(rd repo.Reader) error {
		cr := &cachedReader{Reader: rd, c: c}
		for _, h := range []repo.Hash{inPlace, copied} {
			if err := cr.Peek(h, func(k repo.Kind, p []byte) error {
				if repo.HashObject(k, p) != h {
					t.Errorf("%s: Peek lent another payload", h.Short())
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.get(inPlace); ok {
		t.Error("a payload lent in place was copied into the cache")
	}
	if k, p, ok := c.get(copied); !ok || repo.HashObject(k, p) != copied {
		t.Errorf("a 300 KiB payload copied out of the tables was not cached under its hash (%v)", ok)
	}
	err = r.View(func(rd repo.Reader) error {
		_, _, err := (&cachedReader{Reader: rd, c: c}).Get(inPlace)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, p, ok := c.get(inPlace); !ok || repo.HashObject(k, p) != inPlace {
		t.Error("a Get's copy was not cached under its hash")
	}
}
