package repo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// seedObjects adds every vector payload of one kind (objects.json and the
// zones' blobs and trees) to a fuzz corpus.
func seedObjects(f *testing.F, kind Kind) {
	for _, o := range loadObjects(f).Objects {
		if Kind(o.Kind) == kind {
			f.Add(mustHex(f, o.PayloadHex))
		}
	}
	for _, name := range []string{"example", "types"} {
		var v zoneVector
		readVectorJSON(f, &v, "zones", name+".json")
		switch kind {
		case KindBlob:
			for _, b := range v.Blobs {
				f.Add(mustHex(f, b.PayloadHex))
			}
		case KindTree:
			for _, t := range v.Trees {
				f.Add(mustHex(f, t.PayloadHex))
			}
		}
	}
}

// Property for blobs and trees: no panic, and whatever decodes is canonical
// (re-encodes to the identical bytes), so one RRset or node has one hash.
func FuzzDecodeBlob(f *testing.F) {
	seedObjects(f, KindBlob)
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBlob(p)
		if err != nil {
			return
		}
		out, err := b.Encode()
		if err != nil {
			t.Fatalf("decoded blob does not encode: %v", err)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("not canonical:\n in %x\nout %x", p, out)
		}
	})
}

func FuzzDecodeTree(f *testing.F) {
	seedObjects(f, KindTree)
	f.Fuzz(func(t *testing.T, p []byte) {
		tr, err := DecodeTree(p)
		if err != nil {
			return
		}
		out, err := tr.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("not canonical:\n in %x\nout %x", p, out)
		}
	})
}

// Commits are text with forward-compatible parsing, so decoding is not
// canonical and the property is weaker: unknown header lines are dropped,
// header order is not enforced, a message without a final newline gains
// one, and spacing inside signature lines is normalised. What must hold is
// that Encode's output decodes to the same commit and is a fixed point
// (encode(decode(encode(c))) == encode(c)), and that commits Encode wrote
// round-trip byte for byte.
func FuzzDecodeCommit(f *testing.F) {
	seedObjects(f, KindCommit)
	f.Add([]byte("version 1\ntree " + strings.Repeat("a", 64) + "\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\nfuture x\n\nmsg"))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeCommit(p)
		if err != nil {
			return
		}
		if _, err := Links(KindCommit, p); err != nil {
			t.Fatalf("decodes but Links fails: %v", err)
		}
		out := c.Encode()
		c2, err := DecodeCommit(out)
		if err != nil {
			t.Fatalf("re-encoded commit does not decode: %v\n%q", err, out)
		}
		if out2 := c2.Encode(); !bytes.Equal(out, out2) {
			t.Fatalf("encode is not a fixed point:\n%q\n%q", out, out2)
		}
	})
}

// Tags: the same weaker property as commits (text, unknown lines ignored).
func FuzzDecodeTag(f *testing.F) {
	tag := Tag{Object: MustParseHash(strings.Repeat("ab", 32)), Type: KindCommit, Name: "v1",
		Tagger: Signature{Name: "T", Email: "t@example.invalid", When: 1795564900, TZ: 330}, Message: "release\n"}
	f.Add(tag.Encode())
	f.Add([]byte("version 1\nobject " + strings.Repeat("0", 64) + "\ntype tree\ntag x\ntagger a <b> 1 -0800\n\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		tg, err := DecodeTag(p)
		if err != nil {
			return
		}
		out := tg.Encode()
		tg2, err := DecodeTag(out)
		if err != nil {
			t.Fatalf("re-encoded tag does not decode: %v\n%q", err, out)
		}
		if out2 := tg2.Encode(); !bytes.Equal(out, out2) {
			t.Fatalf("encode is not a fixed point:\n%q\n%q", out, out2)
		}
	})
}

// Symrefs are their target's bytes: canonical by construction.
func FuzzDecodeSymref(f *testing.F) {
	seedObjects(f, KindSymref)
	f.Add([]byte("refs/heads/example.com./main"))
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := DecodeSymref(p)
		if err != nil {
			return
		}
		if s != string(p) {
			t.Fatalf("symref %q decodes to %q", p, s)
		}
	})
}

// FuzzImport feeds small zone files to Import (in memory). Properties: no
// panic; a refused file is ErrInvalidZoneFile; an accepted one gives a
// sound repository, and importing it again changes nothing.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"example.zone", "types.zone"} {
		data, err := os.ReadFile(vectorPath(f, "zones", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("$ORIGIN fuzz.test.\n@ IN A 192.0.2.1\na.b IN TXT \"x\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			return
		}
		r, err := Open("", Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		opts := func() ImportOptions {
			return ImportOptions{Zone: "fuzz.test.", Source: strings.NewReader(text), SourceName: "fuzz.zone",
				Author: Signature{Name: "F", Email: "f@example.invalid", When: 1}}
		}
		res, err := r.Import(context.Background(), opts())
		if err != nil {
			if !strings.Contains(err.Error(), ErrInvalidZoneFile.Error()) {
				t.Fatalf("refused without ErrInvalidZoneFile: %v", err)
			}
			return
		}
		rep, err := r.Fsck(context.Background())
		if err != nil || !rep.OK() {
			t.Fatalf("fsck after import: %v %v", err, rep.Problems)
		}
		if rep.Objects != res.Objects+1 { // + HEAD's symref
			t.Fatalf("fsck reached %d objects, import reports %d (+1 symref)", rep.Objects, res.Objects)
		}
		again, err := r.Import(context.Background(), opts())
		if err != nil || again.Changed || again.Tree != res.Tree {
			t.Fatalf("re-import: %+v, %v", again, err)
		}
	})
}
