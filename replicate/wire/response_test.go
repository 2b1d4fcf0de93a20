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

// TestWriteMissingRoundTrip: the server's walk answer is one JSON object
// ending in a newline, as the daemon's, and decodes to the same hashes in
// the same order; an empty answer is a list, not null.
func TestWriteMissingRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		var hs []repo.Hash
		for i := 0; i < n; i++ {
			hs = append(hs, repo.HashObject(repo.KindBlob, []byte{byte(i)}))
		}
		var buf bytes.Buffer
		if err := WriteMissing(&buf, hs); err != nil {
			t.Fatal(err)
		}
		body := buf.Bytes()
		var resp WalkResponse
		if err := json.Unmarshal(body, &resp); err != nil || !bytes.HasSuffix(body, []byte("}\n")) || resp.Missing == nil {
			t.Fatalf("%d hashes: body %q (%v)", n, body, err)
		}
		var got []repo.Hash
		if err := DecodeMissing(bytes.NewReader(body), func(h repo.Hash) error { got = append(got, h); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d hashes decoded, want %d", len(got), n)
		}
		for i := range hs {
			if got[i] != hs[i] {
				t.Errorf("hash %d = %s, want %s", i, got[i].Short(), hs[i].Short())
			}
		}
	}
}
