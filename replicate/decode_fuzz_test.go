package replicate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
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

// FuzzClientDecodeWalk: the streaming walk decoder never panics and agrees
// with a plain decode of the same JSON whenever it succeeds.
func FuzzClientDecodeWalk(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"missing":["` + h + `"]}`))
	f.Add([]byte(`{"missing":null}`))
	f.Add([]byte(`{"missing":[],"extra":{"a":[1,2]}}`))
	f.Add([]byte(`{"missing":["` + strings.ToUpper(h) + `"]}` + "\n"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []repo.Hash
		err := decodeWalk(bytes.NewReader(data), func(h repo.Hash) error { got = append(got, h); return nil })
		if err != nil {
			return
		}
		for _, h := range got {
			if h.IsZero() && !bytes.Contains(data, []byte(strings.Repeat("0", 64))) {
				t.Fatalf("zero hash from %q", data)
			}
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
		{Branches: []string{"a\\"}},
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
// after the plan), but it still counts as advertised, so it is not pruned.
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
	if len(p.Prune) != 1 || p.Prune[0].Name != "gone" {
		t.Errorf("prune %+v, want only gone", p.Prune)
	}
}
