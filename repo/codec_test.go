package repo

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

var h32 = strings.Repeat("11", 32)

// Every case must fail with ErrCorrupt and an error naming what is wrong.
func TestDecodersReject(t *testing.T) {
	goodBlob := "01 03777777 076578616d706c65 03636f6d 00 0001 0001 0000012c 0002 0004 c0000201 0004 c0000202"
	hA := strings.Repeat("aa", 32)
	hB := strings.Repeat("bb", 32)
	cases := []struct {
		name   string
		decode func([]byte) error
		in     []byte
		want   string
	}{
		{"blob empty", blobErr, nil, "empty"},
		{"blob version 2", blobErr, hx("02" + goodBlob[2:]), "version 2"},
		{"blob truncated owner", blobErr, hx("01 03777777"), "truncated"},
		{"blob compression pointer", blobErr, hx("01 c00c 0001 0001 0000012c 0000"), "compression"},
		{"blob dot in label", blobErr, hx("01 03612e62 00 0001 0001 0000012c 0000"), "dot"},
		{"blob truncated header", blobErr, hx("01 00 0001 0001"), "truncated header"},
		{"blob truncated rdata", blobErr, hx(goodBlob[:len(goodBlob)-4]), "truncated"},
		{"blob missing record", blobErr, hx("01 00 0001 0001 0000012c 0002 0004 c0000201"), "record 1"},
		{"blob trailing bytes", blobErr, hx(goodBlob + "ff"), "trailing"},
		{"blob records out of order", blobErr, hx("01 00 0001 0001 0000012c 0002 0004 c0000202 0004 c0000201"), "out of order"},

		{"tree empty", treeErr, nil, "empty"},
		{"tree version 0", treeErr, hx("00 00"), "version 0"},
		{"tree no count", treeErr, hx("01"), "varint"},
		{"tree padded count", treeErr, hx("01 8000"), "minimally"},
		{"tree count too large", treeErr, hx("01 05 0001 41" + hA), "does not fit"},
		{"tree unknown kind", treeErr, hx("01 01 0201 41" + hA), "unknown kind 2"},
		{"tree empty name", treeErr, hx("01 01 0100" + hA + "00"), "empty name"},
		{"tree truncated entry", treeErr, hx("01 01 010a 41" + hA), "truncated"},
		{"tree trailing", treeErr, hx("01 01 0101 41" + hA + "00"), "trailing"},
		{"tree duplicate", treeErr, hx("01 02 0101 41" + hA + "0101 41" + hB), "duplicate"},
		{"tree out of order names", treeErr, hx("01 02 0101 42" + hA + "0101 41" + hB), "out of order"},
		{"tree leaf before subtree", treeErr, hx("01 02 0101 41" + hA + "0001 61" + hB), "out of order"},

		{"commit no blank line", commitErr, []byte("version 1\ntree " + h32 + "\n"), "no blank line"},
		{"commit version 2", commitErr, []byte("version 2\ntree " + h32 + "\n\n"), `"version 2"`},
		{"commit no tree", commitErr, []byte("version 1\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\n"), "no tree"},
		{"commit short tree", commitErr, []byte("version 1\ntree abcd\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\n"), "64 hex"},
		{"commit bad parent", commitErr, []byte("version 1\ntree " + h32 + "\nparent " + strings.Repeat("z", 64) + "\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\n"), "not hexadecimal"},
		{"commit two trees", commitErr, []byte("version 1\ntree " + h32 + "\ntree " + h32 + "\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\n"), "two tree"},
		{"commit no author", commitErr, []byte("version 1\ntree " + h32 + "\ncommitter a <b> 1 +0000\n\n"), "no author"},
		{"commit no committer", commitErr, []byte("version 1\ntree " + h32 + "\nauthor a <b> 1 +0000\n\n"), "no committer"},
		{"commit author without email", commitErr, []byte("version 1\ntree " + h32 + "\nauthor a 1 +0000\ncommitter a <b> 1 +0000\n\n"), "no <email>"},
		{"commit bad time", commitErr, []byte("version 1\ntree " + h32 + "\nauthor a <b> x +0000\ncommitter a <b> 1 +0000\n\n"), "bad time"},
		{"commit bad offset", commitErr, []byte("version 1\ntree " + h32 + "\nauthor a <b> 1 0530\ncommitter a <b> 1 +0000\n\n"), "zone offset"},

		{"tag no object", tagErr, []byte("version 1\ntype commit\ntag v1\ntagger a <b> 1 +0000\n\n"), "no object"},
		{"tag bad type", tagErr, []byte("version 1\nobject " + h32 + "\ntype symref\ntag v1\ntagger a <b> 1 +0000\n\n"), "type"},
		{"tag twice", tagErr, []byte("version 1\nobject " + h32 + "\nobject " + h32 + "\ntype commit\ntag v1\ntagger a <b> 1 +0000\n\n"), "two object"},

		{"symref not under refs/", symrefErr, []byte("HEAD"), "refs/"},
		{"symref control byte", symrefErr, []byte("refs/heads/a\n"), "control"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.in)
			if err == nil {
				t.Fatal("decoded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%q does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q does not mention %q", err, c.want)
			}
		})
	}
}

func blobErr(p []byte) error   { _, err := DecodeBlob(p); return err }
func treeErr(p []byte) error   { _, err := DecodeTree(p); return err }
func commitErr(p []byte) error { _, err := DecodeCommit(p); return err }
func tagErr(p []byte) error    { _, err := DecodeTag(p); return err }
func symrefErr(p []byte) error { _, err := DecodeSymref(p); return err }

func TestTagRoundTrip(t *testing.T) {
	tag := Tag{Object: MustParseHash(h32), Type: KindCommit, Name: "v1",
		Tagger: Signature{Name: "T", Email: "t@example.invalid", When: 1795564900, TZ: -480}, Message: "release\n"}
	got, err := DecodeTag(tag.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if *got != tag {
		t.Errorf("%+v, want %+v", *got, tag)
	}
	links, err := Links(KindTag, tag.Encode())
	if err != nil || len(links) != 1 || links[0] != (Link{tag.Object, KindCommit}) {
		t.Errorf("links %v, %v", links, err)
	}
}

func TestNamesRejectHostile(t *testing.T) {
	zones := map[string]string{
		"":                             "empty",
		"example.com":                  "trailing dot",
		"Example.com.":                 "lowercase",
		".":                            "root",
		"a..b.":                        "empty label",
		"a/b.":                         "character",
		"../etc.":                      "empty label",
		"a\x00b.":                      "character",
		"a b.":                         "character",
		"-a.":                          "'-'",
		strings.Repeat("a", 64) + ".":  "longer than 63",
		strings.Repeat("abcdefg.", 32): "longer than 253",
		"ex\nample.":                   "character",
	}
	for z, want := range zones {
		err := ValidateZone(z)
		if err == nil || !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateZone(%q) = %v; want ErrInvalidName mentioning %q", z, err, want)
		}
	}
	for _, z := range []string{"example.com.", "_tcp.example.com.", "xn--bcher-kva.example.", "a-b.c0."} {
		if err := ValidateZone(z); err != nil {
			t.Errorf("ValidateZone(%q): %v", z, err)
		}
	}
	refs := map[string]string{
		"":                       "empty",
		"a/b":                    "'/'",
		"..":                     "'..'",
		"a..b":                   "'..'",
		".":                      "'.'",
		"a\x00":                  "0x00",
		"a\x1fb":                 "0x1f",
		"a\x7f":                  "0x7f",
		"a b":                    "0x20",
		strings.Repeat("b", 256): "256 bytes",
	}
	for n, want := range refs {
		for what, validate := range map[string]func(string) error{"branch": ValidateBranch, "tag": ValidateTag} {
			err := validate(n)
			if err == nil || !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), what) {
				t.Errorf("Validate %s %q = %v; want ErrInvalidName naming the %s and %q", what, n, err, what, want)
			}
		}
	}
	for _, n := range []string{"main", "canary", "release-1.2", strings.Repeat("b", 255)} {
		if err := ValidateBranch(n); err != nil {
			t.Errorf("ValidateBranch(%q): %v", n, err)
		}
	}
}

// TestKindCode: Code and KindOfCode are inverses on the five kinds, and
// anything else has code 0 and no kind.
func TestKindCode(t *testing.T) {
	seen := map[uint8]bool{}
	for _, k := range []Kind{KindBlob, KindTree, KindCommit, KindTag, KindSymref} {
		c := k.Code()
		if c == 0 || seen[c] || KindOfCode(c) != k {
			t.Errorf("%s: code %d, back %q", k, c, KindOfCode(c))
		}
		seen[c] = true
	}
	if c := Kind("bogus").Code(); c != 0 {
		t.Errorf("unknown kind has code %d", c)
	}
	for _, c := range []uint8{0, 6, 7, 255} {
		if k := KindOfCode(c); k != "" {
			t.Errorf("code %d is %q", c, k)
		}
	}
}
