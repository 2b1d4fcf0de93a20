// Package repo is a zonegit-compatible repository: content-addressed objects
// (blobs, trees, commits, tags, symrefs), refs and reflogs kept in a Badger v4
// directory with exactly the key layout the zonegit tools use, so that a
// zonegit daemon can serve a repository written here and vice versa.
//
// Guarantees: every object enters the store through a path that verifies its
// hash; refs move only with compare-and-swap; names are validated before they
// become keys.
//
// Zone files enter through Repo.Import, which gives the same blob and tree
// hashes as the zonegit tools; its documentation lists the choices made where
// those tools are lenient (identical records stored once, a CNAME beside
// other data refused, types without a mnemonic stored as TYPEnnn). Repo.Fsck
// verifies the closure of every ref.
package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Hash is the SHA-256 identity of an object. It is a plain [32]byte on
// purpose: reflog entries encode it as a JSON array of 32 numbers, exactly as
// the zonegit tools do.
type Hash [32]byte

// ZeroHash means "none" (for example "create only if absent" in a
// compare-and-swap).
var ZeroHash Hash

// Kind is an object kind as it appears in the hash header and on the wire.
type Kind string

// The object kinds zonegit knows.
const (
	KindBlob   Kind = "blob"
	KindTree   Kind = "tree"
	KindCommit Kind = "commit"
	KindTag    Kind = "tag"
	KindSymref Kind = "symref"
)

// ParseKind returns the Kind named by s, or an error naming s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindBlob, KindTree, KindCommit, KindTag, KindSymref:
		return k, nil
	}
	return "", fmt.Errorf("unknown object kind %q", s)
}

// HashObject is the one place object hashes are computed:
// SHA-256 over "<kind> <decimal len>\x00" followed by the payload.
func HashObject(kind Kind, payload []byte) Hash {
	h := sha256.New()
	var hdr [32]byte
	b := append(hdr[:0], kind...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, 0)
	h.Write(b)
	h.Write(payload)
	var out Hash
	h.Sum(out[:0])
	return out
}

// String returns the 64-character lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the 12-character display form.
func (h Hash) Short() string { return h.String()[:12] }

// IsZero reports whether h is the all-zero "none" hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// ParseHash parses 64 hex characters (either case).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("bad hash %q: must be 64 hex characters, got %d", clip(s), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("bad hash %q: not hexadecimal", clip(s))
	}
	return h, nil
}

// MustParseHash is ParseHash for constants in tests and examples; it panics on
// bad input.
func MustParseHash(s string) Hash {
	h, err := ParseHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// clip keeps error messages bounded when hostile input is echoed back.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
