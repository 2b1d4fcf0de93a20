// Package repotest builds repositories for tests and benchmarks: the
// upstream repository dump from the shared test vectors, written raw into a
// Badger directory, and synthetic zones of any size written object by
// object (much faster than parsing a zone file, so benchmarks can use a
// million records).
package repotest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// VectorsDir returns the directory of the golden vectors recorded from the
// zonegit tools (the one holding repo-dump.json and protocol/): testdata/vectors
// at the module root. They are part of the repository, so a missing
// directory fails the test: the vectors are what proves compatibility.
func VectorsDir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("test vectors: %v", err)
	}
	d := filepath.Join(root, "testdata", "vectors")
	if _, err := os.Stat(filepath.Join(d, "repo-dump.json")); err != nil {
		t.Fatalf("test vectors missing from the repository: %v", err)
	}
	return d
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Dump is the part of vectors/repo-dump.json tests use.
type Dump struct {
	Branches map[string]string `json:"branches"` // branch name -> commit hex (zone example.com.)
	Head     struct {
		SymrefObject string `json:"symref_object"`
		Target       string `json:"target"`
	} `json:"head"`
	TreeHashC1 string `json:"tree_hash_c1"`
	Entries    []struct {
		Family        string   `json:"family"`
		KeyB64        string   `json:"key_b64"`
		ValueB64      string   `json:"value_b64"`
		ReachableFrom []string `json:"reachable_from"`
	} `json:"entries"`
}

// ReadDump parses repo-dump.json from the vectors directory.
func ReadDump(t testing.TB) *Dump {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(VectorsDir(t), "repo-dump.json"))
	if err != nil {
		t.Fatalf("read repo dump: %v", err)
	}
	var d Dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse repo dump: %v", err)
	}
	return &d
}

// LoadDump writes every key and value of vectors/repo-dump.json, byte for
// byte, into a new Badger directory dir (created if needed) and closes it,
// so the directory is exactly what the upstream tools left on disk (as far
// as a normal Badger reader can see). Open it with repo.Open.
func LoadDump(t testing.TB, dir string) *Dump {
	t.Helper()
	d := ReadDump(t)
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("open badger %s: %v", dir, err)
	}
	wb := db.NewWriteBatch()
	for i, e := range d.Entries {
		k, err := base64.StdEncoding.DecodeString(e.KeyB64)
		if err != nil {
			t.Fatalf("dump entry %d: key: %v", i, err)
		}
		v, err := base64.StdEncoding.DecodeString(e.ValueB64)
		if err != nil {
			t.Fatalf("dump entry %d: value: %v", i, err)
		}
		if err := wb.Set(k, v); err != nil {
			t.Fatalf("dump entry %d: write: %v", i, err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatalf("write dump: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close badger %s: %v", dir, err)
	}
	return d
}

// Author is the signature synthetic commits use.
var Author = repo.Signature{Name: "Synthetic", Email: "synthetic@example.invalid", When: 1700000000}

// SyntheticOptions shape a synthetic zone.
type SyntheticOptions struct {
	Zone   string // FQDN with the trailing dot
	Branch string // default "main"
	N      int    // number of A RRsets (one record each), named h<i>
	// Fanout 0 makes a flat zone: every name one label below the apex
	// (h<i>.<zone>), so the apex tree has N entries. Fanout > 0 groups names
	// Fanout to a parent label (h<i>.g<i/Fanout>.<zone>), so no tree is
	// larger than max(Fanout, N/Fanout) entries.
	Fanout int
}

// SyntheticZone builds the zone shown by opts as a new commit on its branch
// (on top of the current tip, if any) and returns the commit. The apex holds
// an SOA and an NS RRset; name i has "A 10.x.y.z" derived from i.
func SyntheticZone(r *repo.Repo, zone, branch string, n int) (repo.Hash, error) {
	return Synthetic(r, SyntheticOptions{Zone: zone, Branch: branch, N: n})
}

// Synthetic is SyntheticZone with options.
func Synthetic(r *repo.Repo, opts SyntheticOptions) (repo.Hash, error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	b, err := r.NewBatch()
	if err != nil {
		return repo.ZeroHash, err
	}
	defer b.Cancel()
	put := func(kind repo.Kind, payload []byte) (repo.Hash, error) {
		return b.PutObject(kind, payload)
	}
	groups := map[string][]repo.TreeEntry{} // parent label -> name subtrees (Fanout > 0)
	var apex []repo.TreeEntry
	for i := 0; i < opts.N; i++ {
		label := "h" + strconv.Itoa(i)
		owner := label + "." + opts.Zone
		group := ""
		if opts.Fanout > 0 {
			group = "g" + strconv.Itoa(i/opts.Fanout)
			owner = label + "." + group + "." + opts.Zone
		}
		leaf, err := putA(put, owner, 300, ipFor(uint32(i)))
		if err != nil {
			return repo.ZeroHash, err
		}
		th, err := putTree(put, []repo.TreeEntry{{Kind: repo.EntryLeaf, Name: "A", Hash: leaf}})
		if err != nil {
			return repo.ZeroHash, err
		}
		e := repo.TreeEntry{Kind: repo.EntrySubtree, Name: label, Hash: th}
		if group == "" {
			apex = append(apex, e)
		} else {
			groups[group] = append(groups[group], e)
		}
	}
	for g, es := range groups {
		th, err := putTree(put, es)
		if err != nil {
			return repo.ZeroHash, err
		}
		apex = append(apex, repo.TreeEntry{Kind: repo.EntrySubtree, Name: g, Hash: th})
	}
	soa, err := putApexSOA(put, opts.Zone, 1)
	if err != nil {
		return repo.ZeroHash, err
	}
	ns, err := putRR(put, opts.Zone, 2, 3600, [][]byte{mustName("ns1." + opts.Zone)})
	if err != nil {
		return repo.ZeroHash, err
	}
	apex = append(apex,
		repo.TreeEntry{Kind: repo.EntryLeaf, Name: "SOA", Hash: soa},
		repo.TreeEntry{Kind: repo.EntryLeaf, Name: "NS", Hash: ns})
	root, err := putTree(put, apex)
	if err != nil {
		return repo.ZeroHash, err
	}
	if err := b.Flush(); err != nil {
		return repo.ZeroHash, err
	}
	return Commit(r, opts.Zone, opts.Branch, root, fmt.Sprintf("synthetic zone of %d names", opts.N))
}

// Commit writes a commit of tree on top of the branch tip (none: a root
// commit) and moves the branch. Commit times increase by one second per
// commit from Author.When, so history order is well defined.
func Commit(r *repo.Repo, zone, branch string, tree repo.Hash, msg string, extraParents ...repo.Hash) (repo.Hash, error) {
	tip, err := r.Branch(zone, branch)
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		return repo.ZeroHash, err
	}
	when := Author.When
	var parents []repo.Hash
	if !tip.IsZero() {
		parents = append(parents, tip)
	}
	parents = append(parents, extraParents...)
	for _, p := range parents {
		_, payload, err := r.Get(p)
		if err != nil {
			return repo.ZeroHash, fmt.Errorf("parent %s: %w", p.Short(), err)
		}
		pc, err := repo.DecodeCommit(payload)
		if err != nil {
			return repo.ZeroHash, err
		}
		if pc.Committer.When >= when {
			when = pc.Committer.When + 1
		}
	}
	sig := Author
	sig.When = when
	c := &repo.Commit{Tree: tree, Parents: parents, Author: sig, Committer: sig, Message: msg + "\n"}
	h, err := r.PutObject(repo.KindCommit, c.Encode())
	if err != nil {
		return repo.ZeroHash, err
	}
	return h, r.UpdateBranch(zone, branch, tip, h, &repo.ReflogEntry{Author: sig.Name + " <" + sig.Email + ">", UnixTime: when, Op: "commit", Message: msg})
}

// SetA commits a change of one name's A RRset on the branch: the name at
// path (labels from the apex downwards) gets a single A record ip with the
// given TTL, creating the trees on the path as needed. Only the trees on
// the path are rewritten, like a real one-record change.
func SetA(r *repo.Repo, zone, branch string, path []string, ttl uint32, ip [4]byte) (repo.Hash, error) {
	tip, err := r.Branch(zone, branch)
	if err != nil {
		return repo.ZeroHash, err
	}
	_, payload, err := r.Get(tip)
	if err != nil {
		return repo.ZeroHash, err
	}
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		return repo.ZeroHash, err
	}
	owner := zone
	for _, l := range path {
		owner = l + "." + owner
	}
	put := func(kind repo.Kind, payload []byte) (repo.Hash, error) { return r.PutObject(kind, payload) }
	leaf, err := putA(put, owner, ttl, ip)
	if err != nil {
		return repo.ZeroHash, err
	}
	root, err := setPath(r, put, c.Tree, path, leaf)
	if err != nil {
		return repo.ZeroHash, err
	}
	return Commit(r, zone, branch, root, "set A of "+owner)
}

// setPath returns the hash of tree (ZeroHash: empty) with leaf "A" at path
// replaced by leaf, iteratively rebuilding the spine bottom-up.
func setPath(r *repo.Repo, put putFunc, tree repo.Hash, path []string, leaf repo.Hash) (repo.Hash, error) {
	spine := make([]*repo.Tree, len(path)+1)
	cur := tree
	for i := 0; i <= len(path); i++ {
		t := &repo.Tree{}
		if !cur.IsZero() {
			_, p, err := r.Get(cur)
			if err != nil {
				return repo.ZeroHash, err
			}
			if t, err = repo.DecodeTree(p); err != nil {
				return repo.ZeroHash, err
			}
		}
		spine[i] = t
		if i < len(path) {
			cur = repo.ZeroHash
			if e, ok := t.Find(repo.EntrySubtree, path[i]); ok {
				cur = e.Hash
			}
		}
	}
	child := repo.TreeEntry{Kind: repo.EntryLeaf, Name: "A", Hash: leaf}
	for i := len(path); i >= 0; i-- {
		t := spine[i]
		replaced := false
		for j := range t.Entries {
			if t.Entries[j].Kind == child.Kind && t.Entries[j].Name == child.Name {
				t.Entries[j].Hash, replaced = child.Hash, true
			}
		}
		if !replaced {
			t.Entries = append(t.Entries, child)
		}
		h, err := putTree(put, t.Entries)
		if err != nil {
			return repo.ZeroHash, err
		}
		if i > 0 {
			child = repo.TreeEntry{Kind: repo.EntrySubtree, Name: path[i-1], Hash: h}
		} else {
			return h, nil
		}
	}
	return repo.ZeroHash, nil
}

type putFunc func(kind repo.Kind, payload []byte) (repo.Hash, error)

func putTree(put putFunc, es []repo.TreeEntry) (repo.Hash, error) {
	p, err := (&repo.Tree{Entries: es}).Encode()
	if err != nil {
		return repo.ZeroHash, err
	}
	return put(repo.KindTree, p)
}

func putRR(put putFunc, owner string, typ uint16, ttl uint32, rdata [][]byte) (repo.Hash, error) {
	p, err := (&repo.Blob{Owner: owner, Class: 1, Type: typ, TTL: ttl, RData: rdata}).Encode()
	if err != nil {
		return repo.ZeroHash, err
	}
	return put(repo.KindBlob, p)
}

func putA(put putFunc, owner string, ttl uint32, ip [4]byte) (repo.Hash, error) {
	return putRR(put, owner, 1, ttl, [][]byte{ip[:]})
}

func putApexSOA(put putFunc, zone string, serial uint32) (repo.Hash, error) {
	rd := append(mustName("ns1."+zone), mustName("hostmaster."+zone)...)
	for _, v := range []uint32{serial, 7200, 3600, 1209600, 300} {
		rd = binary.BigEndian.AppendUint32(rd, v)
	}
	return putRR(put, zone, 6, 3600, [][]byte{rd})
}

// ipFor maps i to 10.x.y.z.
func ipFor(i uint32) [4]byte { return [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)} }

// mustName is the uncompressed wire form of a lowercase FQDN.
func mustName(fqdn string) []byte {
	var out []byte
	start := 0
	for i := 0; i < len(fqdn); i++ {
		if fqdn[i] == '.' {
			out = append(out, byte(i-start))
			out = append(out, fqdn[start:i]...)
			start = i + 1
		}
	}
	return append(out, 0)
}

// Closure is the reference definition of what a replica must hold for
// hs: every object reachable from them in r, read one by one. A missing or
// undecodable object fails the test.
func Closure(t testing.TB, r repo.Reader, hs ...repo.Hash) map[repo.Hash]bool {
	t.Helper()
	seen := map[repo.Hash]bool{}
	stack := append([]repo.Hash(nil), hs...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		kind, payload, err := r.Get(h)
		if err != nil {
			t.Fatalf("closure: object %s: %v", h.Short(), err)
		}
		seen[h] = true
		links, err := repo.Links(kind, payload)
		if err != nil {
			t.Fatalf("closure: %s: %v", h.Short(), err)
		}
		for _, l := range links {
			stack = append(stack, l.Hash)
		}
	}
	return seen
}

// MemRepo is an empty in-memory repository, closed when the test ends.
func MemRepo(t testing.TB) *repo.Repo {
	t.Helper()
	r, err := repo.Open("", repo.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}
