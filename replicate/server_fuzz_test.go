package replicate

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

const fuzzHash = "d9fc9675698350994f7357a8aff16b6f5990417feabbc8887e4af58599f8a662"

// FuzzWalkRequest: the walk request parser never panics, never returns
// more hashes than allowed, and accepts exactly the 64-hex hashes (either
// case) it was given.
func FuzzWalkRequest(f *testing.F) {
	for _, s := range []string{
		`{"roots":["` + fuzzHash + `"],"known":[]}`,
		`{"roots":null,"known":null}`, `{}`, `not json`, `{"roots":["abc"]}`,
		`{"roots":[],"known":[],"extra":1}`, `{"roots":["` + strings.ToUpper(fuzzHash) + `"]}`,
		`{"roots":"x"}`, `[` + strings.Repeat(`[`, 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxHashes = 64
		roots, known, err := ParseWalkRequest(bytes.NewReader(body), 1<<16, maxHashes)
		if err != nil {
			if roots != nil || known != nil {
				t.Fatal("hashes returned with an error")
			}
			return
		}
		if len(roots)+len(known) > maxHashes {
			t.Fatalf("%d hashes accepted, limit %d", len(roots)+len(known), maxHashes)
		}
		if bytes.ContainsRune(body, '\\') {
			return // JSON escapes can spell a hash indirectly
		}
		for _, h := range append(roots, known...) {
			if !bytes.Contains(bytes.ToLower(body), []byte(h.String())) {
				t.Fatalf("hash %s not in the request", h)
			}
		}
	})
}

// FuzzBatchRequest: as FuzzWalkRequest, for batch bodies.
func FuzzBatchRequest(f *testing.F) {
	for _, s := range []string{
		`{"hashes":["` + fuzzHash + `"]}`, `{"hashes":null}`, `{}`, `{"hashes":["` + fuzzHash[:63] + `"]}`,
		`{"hashes":[1]}`, `{"hashes":["` + strings.Repeat("z", 64) + `"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxHashes = 64
		hs, err := ParseBatchRequest(bytes.NewReader(body), 1<<16, maxHashes)
		if err != nil {
			return
		}
		if len(hs) > maxHashes {
			t.Fatalf("%d hashes accepted, limit %d", len(hs), maxHashes)
		}
		if bytes.ContainsRune(body, '\\') {
			return // JSON escapes can spell a hash indirectly
		}
		for _, h := range hs {
			if !bytes.Contains(bytes.ToLower(body), []byte(h.String())) {
				t.Fatalf("hash %s not in the request", h)
			}
		}
	})
}

// FuzzTreeIter: the walk's in-place tree reader accepts exactly what
// repo.DecodeTree accepts and yields the same entries, so the walk can
// neither skip nor invent an entry.
func FuzzTreeIter(f *testing.F) {
	t1, _ := (&repo.Tree{Entries: []repo.TreeEntry{
		{Kind: repo.EntrySubtree, Name: "www", Hash: repo.HashObject(repo.KindTree, nil)},
		{Kind: repo.EntryLeaf, Name: "A", Hash: repo.HashObject(repo.KindBlob, []byte{1})},
		{Kind: repo.EntryLeaf, Name: "AAAA", Hash: repo.HashObject(repo.KindBlob, []byte{2})},
	}}).Encode()
	f.Add(t1)
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0x80, 0}) // padded entry count: not canonical
	f.Add([]byte{2, 0})
	f.Add(append(append([]byte{}, t1...), 0))
	f.Fuzz(func(t *testing.T, p []byte) {
		want, derr := repo.DecodeTree(p)
		it, err := newTreeIter(repo.ZeroHash, p)
		var got []repo.TreeEntry
		if err == nil {
			for it.next() {
				e := repo.TreeEntry{Kind: repo.EntryKind(it.kind), Name: string(it.name)}
				copy(e.Hash[:], it.hash)
				got = append(got, e)
			}
			err = it.err
		}
		if (derr == nil) != (err == nil) {
			t.Fatalf("DecodeTree error %v, iterator error %v", derr, err)
		}
		if err != nil {
			if !errors.Is(err, repo.ErrCorrupt) {
				t.Fatalf("iterator error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(got) != len(want.Entries) {
			t.Fatalf("%d entries, DecodeTree has %d", len(got), len(want.Entries))
		}
		for i := range got {
			if got[i] != want.Entries[i] {
				t.Fatalf("entry %d: %+v, DecodeTree has %+v", i, got[i], want.Entries[i])
			}
		}
	})
}
