package wire

import (
	"bytes"
	"strings"
	"testing"
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
