package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

func loadObjects(t testing.TB) objectsFile {
	t.Helper()
	var f objectsFile
	readVectorJSON(t, &f, "objects.json")
	if len(f.Objects) == 0 {
		t.Fatal("objects.json has no objects")
	}
	return f
}

type sigJSON struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	UnixTime int64  `json:"unix_time"`
	TZOffset string `json:"tz_offset"`
}

func (s sigJSON) String() string {
	return fmt.Sprintf("%s <%s> %d %s", s.Name, s.Email, s.UnixTime, s.TZOffset)
}

func TestObjectVectors(t *testing.T) {
	for _, o := range loadObjects(t).Objects {
		t.Run(o.Label, func(t *testing.T) {
			payload := mustHex(t, o.PayloadHex)
			kind, err := ParseKind(o.Kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(payload) != o.PayloadLen {
				t.Fatalf("payload %d bytes, vector says %d", len(payload), o.PayloadLen)
			}
			if got := HashObject(kind, payload); got.String() != o.Hash {
				t.Fatalf("hash %s, want %s", got, o.Hash)
			}
			if want := fmt.Sprintf("%x", kind+" "+Kind(fmt.Sprint(len(payload)))+"\x00"); want != o.HeaderHex {
				t.Errorf("hash header %s, vector %s", want, o.HeaderHex)
			}
			var reencoded []byte
			switch kind {
			case KindCommit:
				reencoded = checkCommitVector(t, payload, o.Decoded)
			case KindTree:
				reencoded = checkTreeVector(t, payload, o.Decoded)
			case KindBlob:
				reencoded = checkBlobVector(t, payload, o.Decoded)
			case KindSymref:
				var d struct{ Target string }
				if err := json.Unmarshal(o.Decoded, &d); err != nil {
					t.Fatal(err)
				}
				target, err := DecodeSymref(payload)
				if err != nil || target != d.Target {
					t.Fatalf("symref %q, %v; want %q", target, err, d.Target)
				}
				reencoded = []byte(target)
			default:
				t.Fatalf("unexpected kind %s", kind)
			}
			if !bytes.Equal(reencoded, payload) {
				t.Errorf("re-encoded payload differs:\n got %q\nwant %q", reencoded, payload)
			}
			if got := HashObject(kind, reencoded); got.String() != o.Hash {
				t.Errorf("re-encoded hash %s, want %s", got, o.Hash)
			}
			if err := Validate(kind, payload); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func checkCommitVector(t *testing.T, payload []byte, raw json.RawMessage) []byte {
	var d struct {
		Tree      string   `json:"tree"`
		Parents   []string `json:"parents"`
		Author    sigJSON  `json:"author"`
		Committer sigJSON  `json:"committer"`
		Signature string   `json:"signature"`
		Selector  string   `json:"selector"`
		Message   string   `json:"message_bytes_after_blank_line"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommit(payload)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tree.String() != d.Tree {
		t.Errorf("tree %s, want %s", c.Tree, d.Tree)
	}
	var parents []string
	for _, p := range c.Parents {
		parents = append(parents, p.String())
	}
	if !slices.Equal(parents, d.Parents) {
		t.Errorf("parents %v, want %v", parents, d.Parents)
	}
	if c.Author.String() != d.Author.String() || c.Committer.String() != d.Committer.String() {
		t.Errorf("author %q committer %q, want %q and %q", c.Author, c.Committer, d.Author, d.Committer)
	}
	if c.Signature != d.Signature || c.Selector != d.Selector {
		t.Errorf("signature %q selector %q, want %q and %q", c.Signature, c.Selector, d.Signature, d.Selector)
	}
	if c.Message != d.Message {
		t.Errorf("message %q, want %q", c.Message, d.Message)
	}
	return c.Encode()
}

func checkTreeVector(t *testing.T, payload []byte, raw json.RawMessage) []byte {
	var d struct {
		Entries []struct {
			KindByte EntryKind `json:"kind_byte"`
			Name     string    `json:"name"`
			Hash     string    `json:"hash"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	tr, err := DecodeTree(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Entries) != len(d.Entries) {
		t.Fatalf("%d entries, want %d", len(tr.Entries), len(d.Entries))
	}
	// Build the tree from the vector's fields (in reverse, so Encode has to
	// sort) rather than from the decoder's output.
	var fromVector Tree
	for i, e := range d.Entries {
		got := tr.Entries[i]
		if got.Kind != e.KindByte || got.Name != e.Name || got.Hash.String() != e.Hash {
			t.Errorf("entry %d: %+v, want %+v", i, got, e)
		}
		fromVector.Entries = append([]TreeEntry{{Kind: e.KindByte, Name: e.Name, Hash: MustParseHash(e.Hash)}}, fromVector.Entries...)
	}
	out, err := fromVector.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkBlobVector(t *testing.T, payload []byte, raw json.RawMessage) []byte {
	var d struct {
		Owner string   `json:"owner"`
		Class uint16   `json:"class"`
		Type  uint16   `json:"type"`
		TTL   uint32   `json:"ttl"`
		Count int      `json:"rr_count"`
		RData []string `json:"rdata_hex"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBlob(payload)
	if err != nil {
		t.Fatal(err)
	}
	if b.Owner != d.Owner || b.Class != d.Class || b.Type != d.Type || b.TTL != d.TTL || len(b.RData) != d.Count {
		t.Errorf("blob %s/%d/%d/%d/%d records, want %s/%d/%d/%d/%d", b.Owner, b.Class, b.Type, b.TTL, len(b.RData), d.Owner, d.Class, d.Type, d.TTL, d.Count)
	}
	fromVector := Blob{Owner: d.Owner, Class: d.Class, Type: d.Type, TTL: d.TTL}
	for i, h := range d.RData {
		if i < len(b.RData) && fmt.Sprintf("%x", b.RData[i]) != h {
			t.Errorf("record %d: %x, want %s", i, b.RData[i], h)
		}
		// Reverse order: Encode must sort the records.
		fromVector.RData = append([][]byte{mustHex(t, h)}, fromVector.RData...)
	}
	out, err := fromVector.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommitSignatureVector(t *testing.T) {
	f := loadObjects(t)
	pub, err := base64.StdEncoding.DecodeString(f.CommitSigning.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("public key: %v (%d bytes)", err, len(pub))
	}
	priv, err := base64.StdEncoding.DecodeString(f.CommitSigning.PrivateKey)
	if err != nil || len(priv) != ed25519.PrivateKeySize {
		t.Fatalf("private key: %v (%d bytes)", err, len(priv))
	}
	var signed, unsigned []byte
	for _, o := range f.Objects {
		switch o.Hash {
		case f.CommitSigning.SignedCommit:
			signed = mustHex(t, o.PayloadHex)
		case f.CommitSigning.UnsignedCommit:
			unsigned = mustHex(t, o.PayloadHex)
		}
	}
	if signed == nil || unsigned == nil {
		t.Fatal("signed or unsigned commit missing from objects.json")
	}
	c, err := DecodeCommit(signed)
	if err != nil {
		t.Fatal(err)
	}
	sigText, ok := strings.CutPrefix(c.Signature, "ed25519:")
	if !ok {
		t.Fatalf("signature header %q does not start with ed25519:", c.Signature)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		t.Fatal(err)
	}
	msg := c.SignedBytes()
	if !bytes.Equal(msg, unsigned) {
		t.Errorf("SignedBytes differ from the unsigned commit:\n got %q\nwant %q", msg, unsigned)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		t.Error("signature does not verify over SignedBytes")
	}
	if again := ed25519.Sign(ed25519.PrivateKey(priv), msg); !bytes.Equal(again, sig) {
		t.Error("re-signing SignedBytes gives a different signature")
	}
	msg[len(msg)-2] ^= 1
	if ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		t.Error("signature verifies over altered bytes")
	}
}

func TestMergeCommitLinks(t *testing.T) {
	var merge *objectVector
	f := loadObjects(t)
	for i := range f.Objects {
		if f.Objects[i].Label == "commit/merge-two-parents" {
			merge = &f.Objects[i]
		}
	}
	if merge == nil {
		t.Fatal("no merge commit in objects.json")
	}
	payload := mustHex(t, merge.PayloadHex)
	c, err := DecodeCommit(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != 2 {
		t.Fatalf("%d parents, want 2", len(c.Parents))
	}
	links, err := Links(KindCommit, payload)
	if err != nil {
		t.Fatal(err)
	}
	want := []Link{{c.Tree, KindTree}, {c.Parents[0], KindCommit}, {c.Parents[1], KindCommit}}
	if !reflect.DeepEqual(links, want) {
		t.Errorf("links %v, want %v", links, want)
	}
}

// loadDump writes every key and value of repo-dump.json into a new Badger
// directory with Badger itself (not our package) and returns the directory.
func loadDump(t testing.TB) (string, dumpFile) {
	t.Helper()
	var d dumpFile
	readVectorJSON(t, &d, "repo-dump.json")
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	wb := db.NewWriteBatch()
	for _, e := range d.Entries {
		k, err1 := base64.StdEncoding.DecodeString(e.KeyB64)
		v, err2 := base64.StdEncoding.DecodeString(e.ValueB64)
		if err1 != nil || err2 != nil {
			t.Fatalf("entry %s: %v %v", e.KeyPrintable, err1, err2)
		}
		if err := wb.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != d.Counts.Keys {
		t.Fatalf("dump lists %d entries, counts say %d", len(d.Entries), d.Counts.Keys)
	}
	return dir, d
}

func TestDumpReaderCompat(t *testing.T) {
	dir, d := loadDump(t)
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	zones, err := r.Zones()
	if err != nil || !slices.Equal(zones, []string{"example.com."}) {
		t.Errorf("zones %v, %v; want [example.com.]", zones, err)
	}
	branches, err := r.Branches("example.com.")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range branches {
		if b.Zone != "example.com." {
			t.Errorf("branch %+v in another zone", b)
		}
		got[b.Name] = b.Hash.String()
	}
	if !reflect.DeepEqual(got, d.Branches) {
		t.Errorf("branches %v, want %v", got, d.Branches)
	}
	head, err := r.Head()
	if err != nil || head != d.Head.Target || head != "refs/heads/example.com./main" {
		t.Errorf("HEAD -> %q, %v; want %q", head, err, d.Head.Target)
	}
	if h, err := r.RefHash(HeadRef); err != nil || h.String() != d.Head.SymrefObject {
		t.Errorf("HEAD value %s, %v; want the symref %s", h, err, d.Head.SymrefObject)
	}

	mainLog, err := r.Reflog(BranchRef("example.com.", "main"))
	if err != nil {
		t.Fatal(err)
	}
	canaryLog, err := r.Reflog(BranchRef("example.com.", "canary"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mainLog) != 2 || len(canaryLog) != 1 {
		t.Fatalf("reflog main %d entries, canary %d; want 2 and 1", len(mainLog), len(canaryLog))
	}
	c1 := mainLog[0].New
	wantMain := []ReflogEntry{
		{Old: ZeroHash, New: c1, Author: "Vector Bot <vectors@example.invalid>", UnixTime: 1795564945, Op: "commit", Message: "c1: import example.zone"},
		{Old: c1, New: MustParseHash(d.Branches["main"]), Author: "Vector Bot <vectors@example.invalid>", UnixTime: 1795564946, Op: "commit", Message: "c2: move www (main)"},
	}
	if !reflect.DeepEqual(mainLog, wantMain) {
		t.Errorf("main reflog\n got %+v\nwant %+v", mainLog, wantMain)
	}
	wantCanary := ReflogEntry{Old: c1, New: MustParseHash(d.Branches["canary"]), Author: "Vector Bot <vectors@example.invalid>", UnixTime: 1795564947, Op: "commit", Message: "c3: canary www"}
	if canaryLog[0] != wantCanary {
		t.Errorf("canary reflog %+v, want %+v", canaryLog[0], wantCanary)
	}
	// c1's tree is the imported example zone.
	_, payload, err := r.Get(c1)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DecodeCommit(payload); err != nil || c.Tree.String() != d.TreeHashC1 {
		t.Errorf("c1 tree %v, %v; want %s", c, err, d.TreeHashC1)
	}

	rep, err := r.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("fsck problems: %v", rep.Problems)
	}
	if rep.Unreachable != d.Counts.Unreachable || rep.Stored != 65 || rep.Refs != 3 {
		t.Errorf("fsck: refs %d stored %d unreachable %d; want 3, 65, %d", rep.Refs, rep.Stored, rep.Unreachable, d.Counts.Unreachable)
	}
	// Every object the dump says is reachable was reached, and no other.
	reachable := 0
	for _, e := range d.Entries {
		if e.Family == "o/" && len(e.ReachableFrom) > 0 {
			reachable++
		}
	}
	if rep.Objects != reachable {
		t.Errorf("fsck reached %d objects, the dump says %d are reachable", rep.Objects, reachable)
	}
}

// rawEntries returns every key and value of a closed repository directory.
func rawEntries(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithReadOnly(true).WithBypassLockGuard(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]byte{}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keyShape reduces a key to its family and layout, for comparing a
// repository we wrote with the dump.
func keyShape(k string) string {
	switch {
	case strings.HasPrefix(k, objPrefix):
		return fmt.Sprintf("o/<%d bytes>", len(k)-2)
	case strings.HasPrefix(k, reflogPrefix):
		return fmt.Sprintf("l/%s/<u64 %d>", k[2:len(k)-9], len(k[len(k)-8:]))
	default:
		return k
	}
}

func TestWriterCompat(t *testing.T) {
	dumpDir, _ := loadDump(t)
	want := rawEntries(t, dumpDir)

	// The dump's scenario: import example.zone on main, branch canary at
	// that commit, one more commit on each branch.
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	zoneText, err := os.ReadFile(vectorPath(t, "zones", "example.zone"))
	if err != nil {
		t.Fatal(err)
	}
	author := Signature{Name: "Vector Bot", Email: "vectors@example.invalid"}
	imp := func(branch, text, msg string) *ImportResult {
		res, err := r.Import(context.Background(), ImportOptions{Zone: "example.com.", Branch: branch,
			Source: strings.NewReader(text), SourceName: "example.zone", Message: msg, Author: author})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	c1 := imp("main", string(zoneText), "c1: import example.zone")
	if err := r.UpdateBranch("example.com.", "canary", ZeroHash, c1.Commit, nil); err != nil {
		t.Fatal(err)
	}
	imp("main", strings.Replace(string(zoneText), "www       300   IN  A     192.0.2.10", "www 300 IN A 192.0.2.11", 1), "c2: move www (main)")
	imp("canary", strings.Replace(string(zoneText), "www       300   IN  A     192.0.2.10", "www 60 IN A 203.0.113.10", 1), "c3: canary www")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got := rawEntries(t, dir)

	shapes := func(m map[string][]byte) []string {
		var s []string
		for k := range m {
			if !strings.HasPrefix(k, objPrefix) {
				s = append(s, keyShape(k))
			}
		}
		sort.Strings(s)
		return s
	}
	if g, w := shapes(got), shapes(want); !slices.Equal(g, w) {
		t.Errorf("ref and reflog keys differ from the dump:\n got %q\nwant %q", g, w)
	}
	for k, v := range got {
		switch {
		case strings.HasPrefix(k, objPrefix):
			h := Hash([]byte(k[2:]))
			kind, payload, err := decodeObjectValue(h, v)
			if err != nil || HashObject(kind, payload) != h {
				t.Errorf("object %s: kind %q, %v, or does not hash to its key", h, kind, err)
			}
		case k == refPrefix+ZoneRef("example.com."):
			if !bytes.Equal(v, want[k]) || fmt.Sprintf("%x", v) != "7a6f6e656769743a7a6f6e653a6d61726b65723a763034000000000000000000" {
				t.Errorf("zone marker %x, want the sentinel %x", v, want[k])
			}
		case k == refPrefix+HeadRef:
			h := Hash(v)
			sym := got[string(objKey(h))]
			if !bytes.Equal(sym, []byte("symref\x00refs/heads/example.com./main")) || !bytes.Equal(v, want[k]) {
				t.Errorf("HEAD -> %x (%q), want the dump's symref %x", v, sym, want[k])
			}
		case strings.HasPrefix(k, refPrefix):
			if len(v) != 32 {
				t.Errorf("ref %s: %d bytes", k, len(v))
			}
			if kind, _, _ := decodeObjectValue(Hash(v), got[string(objKey(Hash(v)))]); kind != KindCommit {
				t.Errorf("ref %s points at a %q, want a commit", k, kind)
			}
		case strings.HasPrefix(k, reflogPrefix):
			checkReflogShape(t, k, v, want[k])
		}
	}
}

// checkReflogShape compares one reflog value with the dump's value for the
// same key: the same JSON keys in the same order, the same value types,
// arrays of 32 numbers, escaped angle brackets; only hashes and times differ.
func checkReflogShape(t *testing.T, key string, got, want []byte) {
	t.Helper()
	if want == nil {
		t.Errorf("reflog key %q not in the dump", keyShape(key))
		return
	}
	keysInOrder := func(v []byte) []string {
		dec := json.NewDecoder(bytes.NewReader(v))
		var keys []string
		depth := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok := tok.(type) {
			case json.Delim:
				if tok == '{' || tok == '[' {
					depth++
				} else {
					depth--
				}
			case string:
				if depth == 1 && dec.More() {
					keys = append(keys, tok)
					// skip the value
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return keys
					}
				}
			}
		}
		return keys
	}
	wantKeys := []string{"Old", "New", "Author", "UnixTime", "TZOffset", "Op", "Message"}
	if g := keysInOrder(got); !slices.Equal(g, wantKeys) {
		t.Errorf("reflog %s keys %v, want %v", keyShape(key), g, wantKeys)
	}
	if w := keysInOrder(want); !slices.Equal(w, wantKeys) {
		t.Errorf("dump reflog keys %v, want %v", w, wantKeys)
	}
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Old", "New"} {
		arr, ok := g[k].([]any)
		if !ok || len(arr) != 32 {
			t.Errorf("reflog %s: %s is %T of %d, want an array of 32 numbers", keyShape(key), k, g[k], len(arr))
		}
		for _, n := range arr {
			if f, ok := n.(float64); !ok || f < 0 || f > 255 || f != float64(int(f)) {
				t.Errorf("reflog %s: %s holds %v", keyShape(key), k, n)
			}
		}
	}
	for _, k := range []string{"Author", "Op", "Message"} {
		if g[k] != w[k] {
			t.Errorf("reflog %s: %s %q, dump %q", keyShape(key), k, g[k], w[k])
		}
	}
	if !bytes.Contains(got, []byte(`"Author":"Vector Bot \u003cvectors@example.invalid\u003e"`)) {
		t.Errorf("reflog %s: Author not escaped like the dump: %s", keyShape(key), got)
	}
	if _, ok := g["UnixTime"].(float64); !ok {
		t.Errorf("reflog %s: UnixTime is %T", keyShape(key), g["UnixTime"])
	}
	if _, ok := g["TZOffset"].(float64); !ok {
		t.Errorf("reflog %s: TZOffset is %T", keyShape(key), g["TZOffset"])
	}
}
