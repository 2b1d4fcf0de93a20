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
// verifies the closure of every ref and the kind of every edge in it.
//
// # Readers and writers
//
// A Badger "read-only" open is not read-only. Measured and read in Badger
// v4 (db.go Open, levels.go revertToManifest, memtable.go openMemTable):
// it deletes every table file the MANIFEST it read does not list, which
// while a writer is active includes the tables the writer has just made
// (the directory is then unusable: "file does not exist for table N") and
// with a truncated MANIFEST is every table; it maps the writer's growing
// write-ahead log, which the writer later truncates (SIGBUS in the reader);
// and it refuses a directory whose writer was killed ("Log truncate
// required") until a writer has opened it. The zonegit daemon opens
// repositories exactly so (read-only, without the lock): never let it
// serve a directory that anything writes to.
//
// So no process of ours opens a directory with Badger unless it is its one
// writer. Coordination is Badger's own lock, flock(2) on the directory: a
// writable open takes it exclusively (dir_unix.go acquireDirectoryLock),
// our readers take it shared. A read-only Open takes the shared lock
// (without waiting unless Options.LockWait says so: a writer has the
// directory → ErrLocked naming its pid), checks the files for damage, and
// opens a private snapshot: a directory with hard links to the files (in
// the temporary directory when it is on the repository's filesystem, else
// beside the repository; copies when links fail). Badger opens the
// snapshot read-only, so whatever it deletes or maps is ours, and the
// repository's files stay byte for byte as they were, healthy or damaged.
// The handle keeps the shared lock until Close, because links are only
// safe while no writer runs: Badger truncates a table to zero bytes before
// it deletes it (ristretto z.MmapFile.Delete), which would empty the
// linked copy too; it never writes to a table in place otherwise. A
// writer that finds readers waits for them (up to DefaultReaderWait); one
// that finds another writer fails at once with ErrLocked.
//
// A long-lived reader (serve) opens Detached: the files are copied, the
// lock is let go before Open returns, and writers come and go beside the
// handle. Reuse links the tables and value logs that have not changed from
// the previous detached snapshot's copies (which nothing writes to), so a
// new snapshot copies only what a writer added. If a writer was killed,
// the snapshot is a full copy that is recovered with a writable open of
// the copy before it is read; the repository itself is recovered by its
// next writer. Copies keep holes (a killed writer's 512 MiB value log
// holds a few KiB), and fall back to the temporary directory when the
// repository's filesystem is full.
//
// Cost of a read-only Open (snapshot, Badger open, one lookup, Close) on a
// closed repository, BenchmarkReadOnlyOpen, 2 shared cores: 100,000
// records (18 MiB) 2.9 ms attached, 10.7 ms detached, 5.7 ms detached
// with reuse; 1,000,000 records (176 MiB) 23 ms, 113 ms and 22 ms. A
// Badger read-only open of the directory itself took 2.3 ms at 100,000.
//
// # Damage and full disks
//
// Damage Badger would answer with a panic in one of its own goroutines
// (a truncated table: its footer is read with unchecked offsets), an exit
// (y.Check), or a "repair" that deletes data (a MANIFEST that lost
// records) is found before Badger opens anything, by readers and writers
// alike (checkFiles): the MANIFEST must replay to its last byte, every
// table it lists must exist and have a sound footer and index checksum and
// open cleanly, and a table it does not list must be explained by a
// crashed writer's log. Such damage, and anything Badger still panics on
// later in our goroutines (reads run with debug.SetPanicOnFault, so a
// fault on a mapped page is a panic there too), is a *DamageError
// (errors.Is ErrDamaged) that names the damaged file and says what to do:
// run `zonegit-replicate fsck`, then delete the directory and pull (or
// apply) again.
//
// Badger writes through shared maps of files it sized with ftruncate, so
// on a full filesystem a write is not ENOSPC but SIGBUS in a Badger
// goroutine, which no recover can catch. Writers therefore check the free
// space when they open and every MiB they write, and stop with a
// *NoSpaceError (errors.Is syscall.ENOSPC) naming the repository while 64
// MiB are still free. Something else filling the filesystem faster than
// that can still kill a writer; readers need no free space (links).
//
// On Windows there is no shared lock: the LOCK file is opened
// exclusively, so readers also exclude each other, and a writer cannot
// tell a reader from a writer (it waits DefaultReaderWait either way).
package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
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
	if k := Kind(s); k.Code() != 0 {
		return k, nil
	}
	return "", fmt.Errorf("unknown object kind %q", s)
}

// kindCodes lists the kinds in the order of their codes (Kind.Code).
var kindCodes = [...]Kind{"", KindBlob, KindTree, KindCommit, KindTag, KindSymref}

// Code numbers the five kinds 1-5 (0 for anything else), for sets that
// keep an object's kind in a few bits: the walk's seen set, a pull's
// receipts. The numbers are in memory only, never stored or sent.
func (k Kind) Code() uint8 {
	switch k { // in kindCodes' order; a switch, as it runs once per object in a pull
	case KindBlob:
		return 1
	case KindTree:
		return 2
	case KindCommit:
		return 3
	case KindTag:
		return 4
	case KindSymref:
		return 5
	}
	return 0
}

// KindOfCode is Code's inverse: "" for a code that names no kind.
func KindOfCode(c uint8) Kind {
	if int(c) < len(kindCodes) {
		return kindCodes[c]
	}
	return ""
}

// HashObject is the one place object hashes are computed:
// SHA-256 over "<kind> <decimal len>\x00" followed by the payload
// (objectHeader; ReadVerified feeds its digest a payload in pieces). The
// digest stays on the stack here: hashing allocates nothing.
func HashObject(kind Kind, payload []byte) Hash {
	h := sha256.New()
	var hdr [32]byte
	h.Write(objectHeader(&hdr, kind, len(payload)))
	h.Write(payload)
	var out Hash
	h.Sum(out[:0])
	return out
}

// objectHeader is what an object's hash covers before its payload of n
// bytes, in hdr's memory.
func objectHeader(hdr *[32]byte, kind Kind, n int) []byte {
	b := append(hdr[:0], kind...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, 0)
}

// String returns the 64-character lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the 12-character display form.
func (h Hash) Short() string { return h.String()[:12] }

// IsZero reports whether h is the all-zero "none" hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// CompareHashes orders hashes as their bytes are ordered, which is the
// store's key order. The first 8 bytes are compared as one number: for
// hashes that settles all but a few comparisons, at a fraction of
// bytes.Compare's cost.
func CompareHashes(a, b Hash) int {
	x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return bytes.Compare(a[8:], b[8:])
}

// SortByHash sorts s by the hashes key returns, in CompareHashes' order
// (the store's key order). Many elements (a full pack's 100,000 name
// trees, its batches of 16,384 blobs) are sorted by their first 4 bytes a
// byte at a pass (hashes spread evenly over them), then each run sharing
// those bytes, usually of one, by comparison: a comparison sort spent 5%
// of a full pack's serve CPU on them. It takes a second slice of len(s)
// meanwhile. key must return a pointer into the element it is given.
func SortByHash[T any](s []T, key func(*T) *Hash) {
	cmp := func(a, b T) int { return CompareHashes(*key(&a), *key(&b)) }
	if len(s) < 256 {
		slices.SortFunc(s, cmp)
		return
	}
	src, dst := s, make([]T, len(s))
	var count [256]int
	for d := 3; d >= 0; d-- { // an even number of passes: the result ends in s
		clear(count[:])
		for i := range src {
			count[key(&src[i])[d]]++
		}
		sum := 0
		for b, c := range count {
			count[b] = sum
			sum += c
		}
		for i := range src {
			b := key(&src[i])[d]
			dst[count[b]] = src[i]
			count[b]++
		}
		src, dst = dst, src
	}
	prefix := func(i int) uint32 { return binary.BigEndian.Uint32(key(&s[i])[:4]) }
	for i := 0; i < len(s); {
		j, p := i+1, prefix(i)
		for j < len(s) && prefix(j) == p {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(s[i:j], cmp)
		}
		i = j
	}
}

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

// AppendUnique appends h to s unless s holds it already: for the short
// lists of tips and base trees a walk compares with, where a set would
// cost more than the scan.
func AppendUnique(s []Hash, h Hash) []Hash {
	if slices.Contains(s, h) {
		return s
	}
	return append(s, h)
}
