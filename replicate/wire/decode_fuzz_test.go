package wire

import (
	"bytes"
	"encoding/json"
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
	fr := NewFrameReader(strings.NewReader(stream), 1<<20)
	var n int
	for {
		h, kind, payload, err := fr.Next()
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
		fr := NewFrameReader(strings.NewReader(bad), 1<<20)
		var err error
		for err == nil {
			_, _, _, err = fr.Next()
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
		fr := NewFrameReader(bytes.NewReader(data), 1024)
		var rebuilt []byte
		for {
			h, kind, payload, err := fr.Next()
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

// FuzzDecodeMissing: the streaming walk answer decoder never panics; when it
// succeeds the body is one valid JSON object and every hash it returned is
// spelled in the body; it stops at the first error its callback returns.
func FuzzDecodeMissing(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"missing":["` + h + `"]}`))
	f.Add([]byte(`{"missing":null}`))
	f.Add([]byte(`{"missing":[],"extra":{"a":[1,2]}}`))
	f.Add([]byte(`{"missing":["` + strings.ToUpper(h) + `"]}` + "\n"))
	f.Add([]byte(`{"a":"\u0041","missing":["` + h + `","` + h + `"],"missing":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []repo.Hash
		err := DecodeMissing(bytes.NewReader(data), func(h repo.Hash) error { got = append(got, h); return nil })
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
			err := DecodeMissing(bytes.NewReader(data), func(repo.Hash) error { n++; return stop })
			if !errors.Is(err, stop) || n != 1 {
				t.Fatalf("callback error: decode went on (%d calls, %v)", n, err)
			}
		}
	})
}

// FuzzDecodeMissingRoundTrip: any answer a primary can write (a list of
// hashes, with a field the client does not know) decodes to exactly that
// list, in order.
func FuzzDecodeMissingRoundTrip(f *testing.F) {
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
		if err := DecodeMissing(bytes.NewReader(body), func(h repo.Hash) error { got = append(got, h.String()); return nil }); err != nil {
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

func TestDecodeMissingStrict(t *testing.T) {
	h := strings.Repeat("Ab", 32)
	var got []repo.Hash
	if err := DecodeMissing(strings.NewReader(`{"missing":["`+h+`"],"x":[{}]}`), func(x repo.Hash) error { got = append(got, x); return nil }); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{`{"missing":["abc"]}`, `{"missing":[1]}`, `{"missing":{}}`, `{"missing":[]`, `{} {}`, `nope`} {
		if err := DecodeMissing(strings.NewReader(bad), func(repo.Hash) error { return nil }); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	big := &limitedReader{r: strings.NewReader(strings.Repeat(" ", 100)), n: 10}
	if _, err := io.ReadAll(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}
