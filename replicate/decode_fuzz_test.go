package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

func clientFrame(kind repo.Kind, payload string) string {
	h := repo.HashObject(kind, []byte(payload))
	return h.String() + " " + string(kind) + " " + clientItoa(len(payload)) + "\n" + payload
}

func clientItoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func TestFrameReader(t *testing.T) {
	stream := clientFrame(repo.KindBlob, "abc") + clientFrame(repo.KindSymref, "refs/heads/x./main") + clientFrame(repo.KindBlob, "")
	fr := newFrameReader(strings.NewReader(stream), 1<<20)
	var n int
	for {
		h, kind, payload, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if repo.HashObject(kind, payload) != h {
			t.Fatalf("frame %d does not verify", n)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d frames, want 3", n)
	}
	for name, bad := range map[string]string{
		"truncated payload": stream[:len(stream)-20],
		"truncated header":  clientFrame(repo.KindBlob, "x")[:30],
		"bad kind":          strings.Repeat("a", 64) + " blub 1\nx",
		"bad length":        strings.Repeat("a", 64) + " blob -1\n",
		"too long":          strings.Repeat("a", 64) + " blob 2000000\n",
		"short hash":        "abcd blob 1\nx",
		"no fields":         "hello\n",
	} {
		fr := newFrameReader(strings.NewReader(bad), 1<<20)
		var err error
		for err == nil {
			_, _, _, err = fr.next()
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzBatchFrames: the frame parser never panics, never returns a payload
// longer than the bound, and every frame it returns re-encodes to the bytes
// it consumed.
func FuzzBatchFrames(f *testing.F) {
	f.Add([]byte(clientFrame(repo.KindBlob, "abc") + clientFrame(repo.KindTree, "\x01\x00")))
	f.Add([]byte(strings.Repeat("a", 64) + " blob 3\nab"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), 1024)
		var rebuilt []byte
		for {
			h, kind, payload, err := fr.next()
			if err != nil {
				if errors.Is(err, io.EOF) && !bytes.Equal(rebuilt, data) && !bytes.EqualFold(rebuilt, data) {
					t.Fatalf("clean EOF but consumed %q of %q", rebuilt, data)
				}
				return
			}
			if len(payload) > 1024 {
				t.Fatalf("payload of %d bytes beyond the bound", len(payload))
			}
			rebuilt = append(rebuilt, h.String()+" "+string(kind)+" "+clientItoa(len(payload))+"\n"...)
			rebuilt = append(rebuilt, payload...)
		}
	})
}

// FuzzClientDecodeWalk: the streaming walk decoder never panics; when it
// succeeds the body is one valid JSON object and every hash it returned is
// spelled in the body; it stops at the first error its callback returns.
func FuzzClientDecodeWalk(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"missing":["` + h + `"]}`))
	f.Add([]byte(`{"missing":null}`))
	f.Add([]byte(`{"missing":[],"extra":{"a":[1,2]}}`))
	f.Add([]byte(`{"missing":["` + strings.ToUpper(h) + `"]}` + "\n"))
	f.Add([]byte(`{"a":"\u0041","missing":["` + h + `","` + h + `"],"missing":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []repo.Hash
		err := decodeWalk(bytes.NewReader(data), func(h repo.Hash) error { got = append(got, h); return nil })
		if err != nil {
			return
		}
		if !json.Valid(data) || bytes.TrimSpace(data)[0] != '{' {
			t.Fatalf("accepted %q, which is not one JSON object", data)
		}
		lower := bytes.ToLower(data)
		for _, h := range got {
			if !bytes.Contains(lower, []byte(h.String())) {
				t.Fatalf("hash %s is not in %q", h, data)
			}
		}
		if len(got) > 0 {
			stop := errors.New("stop")
			n := 0
			err := decodeWalk(bytes.NewReader(data), func(repo.Hash) error { n++; return stop })
			if !errors.Is(err, stop) || n != 1 {
				t.Fatalf("callback error: decode went on (%d calls, %v)", n, err)
			}
		}
	})
}

// FuzzClientDecodeWalkRoundTrip: any answer a primary can write (a list of
// hashes, with a field the client does not know) decodes to exactly that
// list, in order.
func FuzzClientDecodeWalkRoundTrip(f *testing.F) {
	f.Add([]byte("seed"), uint16(3), "comment", true)
	f.Add([]byte{}, uint16(0), "", false)
	f.Fuzz(func(t *testing.T, seed []byte, n uint16, extra string, upper bool) {
		want := make([]string, n%2048)
		for i := range want {
			h := repo.HashObject(repo.KindBlob, append(seed, byte(i), byte(i>>8)))
			want[i] = h.String()
			if upper {
				want[i] = strings.ToUpper(want[i])
			}
		}
		body, err := json.Marshal(map[string]any{"x-" + extra: extra, "missing": want})
		if err != nil {
			t.Skip()
		}
		var got []string
		if err := decodeWalk(bytes.NewReader(body), func(h repo.Hash) error { got = append(got, h.String()); return nil }); err != nil {
			t.Fatalf("a well-formed answer failed: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d hashes, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != strings.ToLower(want[i]) {
				t.Fatalf("hash %d = %s, want %s", i, got[i], want[i])
			}
		}
	})
}

// sinkBatch takes what a pack stream fuzz input stores. The fuzzer needs
// an input to behave the same every time to minimise it, and a store's
// background goroutines would make its coverage differ from run to run;
// TestPackStreamSeedAccepted checks that accepted objects reach a real
// store.
// Like repo.Batch, it verifies every object's hash.
type sinkBatch struct{ n int }

func (b *sinkBatch) Put(h repo.Hash, kind repo.Kind, payload []byte) error {
	if got := repo.HashObject(kind, payload); got != h {
		return fmt.Errorf("object %s hashes to %s: %w", h, got, repo.ErrHashMismatch)
	}
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
	_, err = Walk(r, []repo.Hash{tip}, nil, WalkOptions{}, func(h repo.Hash, kind repo.Kind, payload []byte) error {
		if payload == nil {
			if kind, payload, err = r.Get(h); err != nil {
				return err
			}
		}
		out = append(out, h.String()+" "+string(kind)+" "+clientItoa(len(payload))+"\n"...)
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
		p := &puller{c: &Client{}, local: mapReader{}, ctx: context.Background(), batch: &sinkBatch{}, got: received{},
			actual: map[repo.Hash]repo.Kind{},
			pack:   &packState{wanted: map[repo.Hash]kindSet{}, bases: map[repo.Hash]repo.Hash{}}}
		fr := newFrameReader(bytes.NewReader(data), 1<<20)
		linked := map[repo.Hash]kindSet{} // the test's own account of what may come
		accepted := 0
		seen := map[repo.Hash]bool{}
		links := 0
		for first := true; ; first = false {
			h, kind, payload, err := fr.next()
			if err != nil {
				break
			}
			if first {
				p.pack.wanted[h] = setCommit | setTag
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

// FuzzClientDecodeRefs: refs decoding never panics, and Plan over whatever
// decodes never panics and only targets valid names and hashes.
func FuzzClientDecodeRefs(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"zones":["example.com."],"branches":[{"zone":"example.com.","name":"main","hash":"` + h + `"}]}`))
	f.Add([]byte(`{"zones":null,"branches":null}`))
	f.Add([]byte(`{"branches":[{"zone":"../x","name":"a/b","hash":"zz"}],"tags":[{"zone":"a.","name":"..","hash":"` + h + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := decodeRefs(bytes.NewReader(data))
		if err != nil {
			return
		}
		plan, err := Plan(refs, nil, PullOptions{Prune: true})
		if err != nil {
			t.Fatalf("Plan with no options failed: %v", err)
		}
		for _, tg := range append(plan.Targets, plan.Tags...) {
			if repo.ValidateZone(tg.Zone) != nil || repo.ValidateRefName("ref", tg.Name) != nil {
				t.Fatalf("invalid target %+v", tg)
			}
			if _, err := repo.ParseHash(tg.Hash); err != nil {
				t.Fatalf("invalid target hash %+v", tg)
			}
		}
	})
}

func TestDecodeWalkStrict(t *testing.T) {
	h := strings.Repeat("Ab", 32)
	var got []repo.Hash
	if err := decodeWalk(strings.NewReader(`{"missing":["`+h+`"],"x":[{}]}`), func(x repo.Hash) error { got = append(got, x); return nil }); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{`{"missing":["abc"]}`, `{"missing":[1]}`, `{"missing":{}}`, `{"missing":[]`, `{} {}`, `nope`} {
		if err := decodeWalk(strings.NewReader(bad), func(repo.Hash) error { return nil }); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	big := &limitedReader{r: strings.NewReader(strings.Repeat(" ", 100)), n: 10}
	if _, err := io.ReadAll(big); !errors.Is(err, errTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

func TestPlanValidation(t *testing.T) {
	h := strings.Repeat("ab", 32)
	refs := &RefsResponse{Branches: []Branch{
		{Zone: "example.com.", Name: "main", Hash: h},
		{Zone: "example.com.", Name: "../../etc", Hash: h},
		{Zone: "EXAMPLE.com.", Name: "main", Hash: h},
		{Zone: "example.com.", Name: "bad", Hash: "xyz"},
	}}
	p, err := Plan(refs, nil, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || len(p.Invalid) != 3 {
		t.Fatalf("targets %+v invalid %+v", p.Targets, p.Invalid)
	}
	for _, bad := range []PullOptions{
		{Zones: []string{"["}},
		{Branches: []string{"a/b"}},
		{Pins: map[string]string{"nozone": h}},
		{Pins: map[string]string{"example.com./main": "00"}},
		{Pins: map[string]string{"example.com/main": h}},
	} {
		if _, err := Plan(refs, nil, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	local := []repo.Ref{{Zone: "example.com.", Name: "gone"}, {Zone: "example.com.", Name: "pinned"}, {Zone: "other.", Name: "gone"}}
	p, err = Plan(refs, local, PullOptions{Prune: true, Zones: []string{"example.*"}, Pins: map[string]string{"example.com./pinned": h}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Prune) != 1 || p.Prune[0].Name != "gone" || p.Prune[0].Zone != "example.com." {
		t.Errorf("prune %+v", p.Prune)
	}
	refsMap := p.Refs(local)
	if refsMap["example.com./pinned"] != h || refsMap["example.com./main"] != h {
		t.Errorf("Refs %v", refsMap)
	}
	if _, ok := refsMap["example.com./gone"]; ok {
		t.Errorf("pruned branch in Refs: %v", refsMap)
	}
}

// With PinsOnly, a branch the primary advertises without a pin is not a
// target (the apply of a reviewed plan must not pick up a branch created
// after the plan), and the pins are every branch to keep: with Prune, a
// local branch without a pin goes whether the primary advertises it or not.
func TestPlanPinsOnly(t *testing.T) {
	h1, h2 := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	refs := &RefsResponse{Branches: []Branch{
		{Zone: "example.com.", Name: "main", Hash: h1},
		{Zone: "example.com.", Name: "new", Hash: h1},
	}}
	local := []repo.Ref{{Zone: "example.com.", Name: "new"}, {Zone: "example.com.", Name: "gone"}}
	p, err := Plan(refs, local, PullOptions{PinsOnly: true, Prune: true, Pins: map[string]string{"example.com./main": h2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0].Name != "main" || p.Targets[0].Hash != h2 || !p.Targets[0].Pinned {
		t.Errorf("targets %+v, want only the pinned main at %s", p.Targets, h2[:12])
	}
	if len(p.Prune) != 2 || p.Prune[0].Name != "new" || p.Prune[1].Name != "gone" {
		t.Errorf("prune %+v, want new and gone", p.Prune)
	}
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
		pack:   &packState{wanted: map[repo.Hash]kindSet{}, bases: map[repo.Hash]repo.Hash{}}}
	fr := newFrameReader(bytes.NewReader(seed), 1<<20)
	n := 0
	var got []repo.Hash
	for {
		h, kind, payload, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			p.pack.wanted[h] = setCommit
		}
		if err := p.receive(h, kind, payload); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		got = append(got, h)
		n++
	}
	if n < 10 || len(p.pack.wanted) != 0 {
		t.Fatalf("%d frames accepted, %d links left wanted", n, len(p.pack.wanted))
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
