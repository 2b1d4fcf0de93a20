package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
)

// The files a Badger directory consists of (Badger v4 names them so).
const (
	manifestName    = "MANIFEST"
	keyRegistryName = "KEYREGISTRY"
	discardName     = "DISCARD"
	lockName        = "LOCK" // the writer's pid file; not part of the data
	logHeaderSize   = 20     // key id + IV at the start of every .mem and .vlog
	// bulkCloseName is the empty file a bulk load's Close (Options.Bulk)
	// keeps while Badger merges level 0 (see markBulkClose).
	bulkCloseName = "ZONEGIT-BULK-CLOSE"
)

// badgerFile reports whether name is one of the data files of a Badger
// directory: what a snapshot takes and what damage checks look at.
func badgerFile(name string) bool {
	switch name {
	case manifestName, keyRegistryName, discardName, bulkCloseName:
		return true
	}
	_, ok := numberedFile(name)
	return ok
}

// numberedFile returns the extension of a numbered table or log file
// (000001.sst, 000002.vlog, 00003.mem).
func numberedFile(name string) (ext string, ok bool) {
	ext = filepath.Ext(name)
	if ext != ".sst" && ext != ".vlog" && ext != ".mem" {
		return "", false
	}
	if _, err := strconv.ParseUint(strings.TrimSuffix(name, ext), 10, 64); err != nil {
		return "", false
	}
	return ext, true
}

// checkFiles looks at the Badger files in dir (the repository itself, or a
// snapshot of it; errors name repoPath) for the damage that would make
// Badger panic in a goroutine of its own, exit the process, or "repair" the
// directory by deleting data:
//
//   - a MANIFEST that is missing, does not parse, or ends in a partial
//     record (Badger replays the intact prefix and then deletes every table
//     the lost records listed);
//   - a table the MANIFEST lists that is missing, or whose footer and index
//     do not check out (Badger opens tables in goroutines of its own, where
//     a truncated table panics the process);
//   - a table the MANIFEST does not list while there is no write-ahead log
//     (.mem) and no bulk Close marker (bulkCloseName): only a crashed
//     writer leaves such tables, and it leaves its log behind, or, killed
//     in a bulk load's Close (which merges level 0 after Badger deleted the
//     last log), the marker; without either the MANIFEST lost records;
//   - a .mem or .vlog shorter than its header (Badger asserts, and exits).
//
// It reads only; every table it can open it also opens once the way Badger
// will, in this goroutine, where a panic becomes an error.
func checkFiles(repoPath, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open repository %s: %w", repoPath, err)
	}
	damaged := func(what, format string, args ...any) error {
		return &DamageError{Path: repoPath, What: what, Detail: fmt.Sprintf(format, args...)}
	}
	tables := map[uint64]string{}
	var logs []string
	hasManifest, anyFile, hasMem, merging := false, false, false, false
	for _, e := range ents {
		name := e.Name()
		if !badgerFile(name) {
			continue
		}
		anyFile = true
		switch ext, _ := numberedFile(name); {
		case name == manifestName:
			hasManifest = true
		case name == bulkCloseName:
			merging = true
		case ext == ".sst":
			id, _ := table.ParseFileID(name)
			tables[id] = name
		case ext == ".mem":
			hasMem = true
			logs = append(logs, name)
		case ext == ".vlog":
			logs = append(logs, name)
		}
	}
	if !anyFile {
		return nil
	}
	if !hasManifest {
		return damaged(manifestName, "missing, but the directory holds Badger files")
	}
	mf, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		return damaged(manifestName, "%v", err)
	}
	ids := make([]uint64, 0, len(mf.Tables))
	for id := range mf.Tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		name := table.IDToFilename(id)
		if _, ok := tables[id]; !ok {
			return damaged("table "+name, "listed in the MANIFEST but missing")
		}
		tm := mf.Tables[id]
		if tm.KeyID != 0 {
			return damaged("table "+name, "encrypted (key %d); zonegit repositories are never encrypted", tm.KeyID)
		}
		if err := checkTable(filepath.Join(dir, name), tm.Compression); err != nil {
			return damaged("table "+name, "%v", err)
		}
	}
	if !hasMem && !merging {
		for id, name := range tables {
			if _, ok := mf.Tables[id]; !ok {
				return damaged("table "+name, "not listed in the MANIFEST, and no write-ahead log explains it (the MANIFEST lost records)")
			}
		}
	}
	for _, name := range logs {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("open repository %s: %w", repoPath, err)
		}
		if fi.Size() > 0 && fi.Size() < logHeaderSize {
			return damaged(name, "only %d bytes, shorter than its %d-byte header", fi.Size(), logHeaderSize)
		}
	}
	return nil
}

// readManifest replays a MANIFEST the way Badger does, but treats a partial
// last record as damage: Badger silently drops it (and the tables it
// created) and truncates the file.
func readManifest(path string) (badger.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return badger.Manifest{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return badger.Manifest{}, err
	}
	var mf badger.Manifest
	var end int64
	err = caught(func() (err error) {
		mf, end, err = badger.ReplayManifestFile(f, 0, badger.DefaultOptions("").WithLogger(nil))
		return err
	})
	if err != nil {
		return mf, err
	}
	if end < fi.Size() {
		return mf, fmt.Errorf("ends in a partial record: intact up to byte %d of %d (truncated, or torn by a crash)", end, fi.Size())
	}
	return mf, nil
}

// checkTable checks a table's footer and index checksum by hand (Badger
// reads them with unchecked offsets and panics or exits on a truncated
// file), then opens it the way Badger will.
//
// Footer layout (badger/v4 table.initIndex): ... index | index length (4) |
// checksum (protobuf) | checksum length (4), lengths big-endian.
func checkTable(path string, c options.CompressionType) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < 8 {
		return fmt.Errorf("only %d bytes: truncated", size)
	}
	u32 := func(off int64) (int64, error) {
		var b [4]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return 0, err
		}
		return int64(binary.BigEndian.Uint32(b[:])), nil
	}
	chkLen, err := u32(size - 4)
	if err != nil {
		return err
	}
	if chkLen > size-8 {
		return fmt.Errorf("footer gives a %d-byte checksum in a %d-byte file: truncated or corrupt", chkLen, size)
	}
	chkBuf := make([]byte, chkLen)
	if _, err := f.ReadAt(chkBuf, size-4-chkLen); err != nil {
		return err
	}
	chk, err := parseChecksum(chkBuf)
	if err != nil {
		return fmt.Errorf("footer checksum: %v: truncated or corrupt", err)
	}
	idxLen, err := u32(size - 8 - chkLen)
	if err != nil {
		return err
	}
	if idxLen == 0 || idxLen > size-8-chkLen {
		return fmt.Errorf("footer gives a %d-byte index in a %d-byte file: truncated or corrupt", idxLen, size)
	}
	idx := make([]byte, idxLen)
	if _, err := f.ReadAt(idx, size-8-chkLen-idxLen); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := y.VerifyChecksum(idx, chk); err != nil {
		return fmt.Errorf("index checksum does not match: truncated or corrupt")
	}
	// The footer is sound; now what newLevelsController does with the
	// table (index, first and last keys), here where a panic is caught.
	return caught(func() error {
		mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		// Verifying the blocks it reads (the last one) costs little and
		// catches damage there before a writer's Badger, which does not
		// verify, takes garbage for the table's last key.
		t, err := table.OpenTable(mf, table.Options{BlockSize: 4 << 10, Compression: c, ChkMode: options.OnBlockRead})
		if err != nil {
			_ = mf.Close(-1)
			return err
		}
		// Close, never DecrRef: dropping the last reference deletes the file.
		return t.Close(-1)
	})
}

// parseChecksum decodes Badger's Checksum message (pb.Checksum: field 1
// algorithm, field 2 sum, both varints) without a protobuf dependency.
func parseChecksum(b []byte) (*pb.Checksum, error) {
	c := &pb.Checksum{}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad field key")
		}
		b = b[n:]
		if key&7 != 0 {
			return nil, fmt.Errorf("field %d has wire type %d, want varint", key>>3, key&7)
		}
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad varint")
		}
		b = b[n:]
		switch key >> 3 {
		case 1:
			c.Algo = pb.Checksum_Algorithm(v)
		case 2:
			c.Sum = v
		}
	}
	if c.Algo != pb.Checksum_CRC32C && c.Algo != pb.Checksum_XXHash64 {
		return nil, fmt.Errorf("unknown checksum algorithm %d", c.Algo)
	}
	return c, nil
}

// panicError is a panic (or a memory fault) inside Badger, caught in our
// goroutine.
type panicError struct {
	value any
	fault bool // a memory fault on a mapped file
}

func (e *panicError) Error() string {
	if e.fault {
		return fmt.Sprintf("memory fault on a mapped file (%v)", e.value)
	}
	return fmt.Sprintf("Badger panicked: %v", e.value)
}

// caught runs fn, turning a panic or a memory fault on mapped memory into
// an error. Badger panics on some damaged files, and touching a mapped page
// the filesystem cannot back (a full tmpfs, a file truncated under the
// mapping) raises SIGBUS, which SetPanicOnFault turns into a panic in this
// goroutine instead of killing the process.
func caught(fn func() error) (err error) {
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			_, fault := p.(interface{ Addr() uintptr })
			if re, ok := p.(runtime.Error); ok && !fault {
				fault = strings.Contains(re.Error(), "fault")
			}
			err = &panicError{value: p, fault: fault}
		}
	}(debug.SetPanicOnFault(true))
	return fn()
}
