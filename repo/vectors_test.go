package repo

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectorsDir holds the golden data recorded from the zonegit tools, kept in
// the repository (testdata/vectors, see its README). Tests fail, not skip,
// without it: the vectors are what proves compatibility with the zonegit tools.
var vectorsDir = filepath.Join("..", "testdata", "vectors")

func vectorPath(t testing.TB, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{vectorsDir}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("golden vector %s is missing (expected in testdata/vectors): %v", p, err)
	}
	return p
}

func readVectorJSON(t testing.TB, v any, parts ...string) {
	t.Helper()
	data, err := os.ReadFile(vectorPath(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", filepath.Join(parts...), err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector: %v", err)
	}
	return b
}

// zoneVector is vectors/zones/<name>.json.
type zoneVector struct {
	Zone     string `json:"zone"`
	ZoneFile string `json:"zone_file"`
	TreeHash string `json:"tree_hash"`
	Counts   struct {
		RRsets    int `json:"rrsets"`
		Blobs     int `json:"blobs"`
		Trees     int `json:"trees"`
		Reachable int `json:"reachable_objects_including_commit"`
	} `json:"counts"`
	Blobs []struct {
		Owner      string   `json:"owner"`
		Path       []string `json:"path"`
		Type       string   `json:"type"`
		TypeCode   uint16   `json:"type_code"`
		TTL        uint32   `json:"ttl"`
		Hash       string   `json:"hash"`
		PayloadHex string   `json:"payload_hex"`
	} `json:"blobs"`
	Trees []struct {
		Path       []string `json:"path"`
		Hash       string   `json:"hash"`
		PayloadHex string   `json:"payload_hex"`
	} `json:"trees"`
}

// objectVector is one entry of vectors/objects.json.
type objectVector struct {
	Label       string          `json:"label"`
	Kind        string          `json:"kind"`
	Hash        string          `json:"hash"`
	PayloadLen  int             `json:"payload_len"`
	HeaderHex   string          `json:"hash_input_header_hex"`
	PayloadHex  string          `json:"payload_hex"`
	PayloadText string          `json:"payload_text"`
	Decoded     json.RawMessage `json:"decoded"`
}

type objectsFile struct {
	CommitSigning struct {
		PublicKey      string `json:"public_key_base64"`
		PrivateKey     string `json:"private_key_base64_TEST_ONLY"`
		SignedCommit   string `json:"signed_commit_hash"`
		UnsignedCommit string `json:"unsigned_commit_hash"`
	} `json:"commit_signing"`
	Objects []objectVector `json:"objects"`
}

// dumpFile is vectors/repo-dump.json.
type dumpFile struct {
	Branches map[string]string `json:"branches"`
	Head     struct {
		SymrefObject string `json:"symref_object"`
		Target       string `json:"target"`
	} `json:"head"`
	TreeHashC1 string `json:"tree_hash_c1"`
	Sentinel   struct {
		Hex string `json:"hex"`
	} `json:"zone_marker_sentinel"`
	Counts struct {
		Keys        int `json:"keys"`
		Unreachable int `json:"unreachable_objects"`
	} `json:"counts"`
	Entries []struct {
		Family        string   `json:"family"`
		KeyPrintable  string   `json:"key_printable"`
		KeyB64        string   `json:"key_b64"`
		ValueB64      string   `json:"value_b64"`
		Ref           string   `json:"ref"`
		Seq           int      `json:"seq"`
		ReachableFrom []string `json:"reachable_from"`
	} `json:"entries"`
}
