package repo_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// FuzzTreeIter: the one tree reader, through every way in (DecodeTree,
// Validate, Links, DiffTree), accepts exactly the payloads the FORMAT.md
// rules accept (repotest.SpecTree) and yields exactly their entries, so no
// user of it can skip or invent an entry; every rejection is ErrCorrupt.
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
		want, ok := repotest.SpecTree(p)
		tr, err := repo.DecodeTree(p)
		if ok != (err == nil) {
			t.Fatalf("FORMAT.md rules accept: %v; DecodeTree error %v", ok, err)
		}
		if err != nil && !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("DecodeTree error %v is not ErrCorrupt", err)
		}
		if ok && !slices.Equal(tr.Entries, want) {
			t.Fatalf("DecodeTree entries %+v, want %+v", tr.Entries, want)
		}
		if verr := repo.Validate(repo.KindTree, p); (verr == nil) != ok || verr != nil && !errors.Is(verr, repo.ErrCorrupt) {
			t.Fatalf("Validate disagrees with the rules: %v", verr)
		}
		links, lerr := repo.Links(repo.KindTree, p)
		if (lerr == nil) != ok || ok && len(links) != len(want) {
			t.Fatalf("Links disagrees with the rules: %d links, %v", len(links), lerr)
		}
		for i, l := range links {
			if l.Hash != want[i].Hash || l.Kind != want[i].ObjectKind() {
				t.Fatalf("link %d = %+v, want %+v", i, l, want[i])
			}
		}
		// With no base every entry differs: DiffTree reports the entries
		// before the first broken rule, in order, then fails exactly when
		// the rules say so.
		var diffed []repo.TreeEntry
		dErr := repo.DiffTree(repo.ZeroHash, p, nil, func(k repo.EntryKind, h repo.Hash, _ []repo.Hash) error {
			diffed = append(diffed, repo.TreeEntry{Kind: k, Hash: h})
			return nil
		})
		if (dErr == nil) != ok {
			t.Fatalf("DiffTree disagrees with the rules: %v", dErr)
		}
		if len(diffed) != len(want) {
			t.Fatalf("DiffTree reported %d entries, the rules read %d", len(diffed), len(want))
		}
		for i := range want {
			if diffed[i].Kind != want[i].Kind || diffed[i].Hash != want[i].Hash {
				t.Fatalf("DiffTree entry %d = %+v, want %+v", i, diffed[i], want[i])
			}
		}
		if ok {
			if enc, err := tr.Encode(); err != nil || !bytes.Equal(enc, p) {
				t.Fatalf("accepted payload is not the canonical encoding of its entries: %v", err)
			}
		}
	})
}
