package repo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// dirtyLogPages returns the dirty KiB of this process's mappings of the
// write-ahead logs (.mem) in dir, by log, from /proc/self/smaps: pages
// written through the mapping and not yet written back to the file.
func dirtyLogPages(t *testing.T, dir string) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	logs := map[string]int{}
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && strings.Contains(fields[0], "-") {
			cur = ""
			if filepath.Dir(fields[5]) == dir && strings.HasSuffix(fields[5], ".mem") {
				cur = filepath.Base(fields[5])
				logs[cur] += 0
			}
			continue
		}
		if cur != "" && len(fields) >= 2 && (fields[0] == "Private_Dirty:" || fields[0] == "Shared_Dirty:") {
			n, _ := strconv.Atoi(fields[1])
			logs[cur] += n
		}
	}
	return logs
}

// unsyncedSlackKiB is what a replaced memtable's log may still show dirty
// after a sync that wrote it back: a few pages, and once up to ~900 KiB,
// were seen dirty in smaps even right after an fsync with no write to the
// log since (the active log shows the same after Badger's own Sync). The
// failure this guards against leaves the whole log unwritten: 8-10 MiB.
const unsyncedSlackKiB = 4 << 10

// TestBatchFlushSyncsEveryLog: Batch.Flush promises its objects are on
// disk when it returns (a ref may then move, and is synced). Badger's Sync
// writes back only the active memtable's log (and the value log); a
// memtable the batch filled and Badger replaced is flushed to a table in
// the background, and until then its log holds the only copy of its
// objects, in dirty pages that a power loss would lose while the ref
// written next survives. With the incremental handle's 2 MiB memtables a
// pull of a few MB leaves such a memtable. After Flush, no log but the
// active one (the highest-numbered, which Badger's Sync covers) may have
// pages not written back.
func TestBatchFlushSyncsEveryLog(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/smaps")
	}
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for round := 0; round < 5; round++ {
		b, err := r.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		// ~12 MB: the 8 MiB memtable is replaced during the batch.
		for i := 0; i < 12000; i++ {
			if _, err := b.PutObject(KindBlob, fmt.Appendf(nil, "durable %d %d %s", round, i, bytes.Repeat([]byte{byte(i)}, 1000))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		logs := dirtyLogPages(t, dir)
		active := ""
		for name := range logs {
			active = max(active, name)
		}
		for name, kb := range logs {
			if name != active && kb > unsyncedSlackKiB {
				t.Fatalf("round %d: after Flush, %d KiB of the replaced memtable's log %s are not written back (dirty KiB by log: %v)", round, kb, name, logs)
			}
		}
	}
}

// TestRefUpdateSyncsEveryLog: objects stored one by one (Repo.Put, not
// synced) and then named by a ref: the ref update's sync must write back
// the logs of memtables replaced since, or the ref could outlive them on a
// power loss.
func TestRefUpdateSyncsEveryLog(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/smaps")
	}
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := importString(t, r, "example.com.", "", openTestZone)
	if err != nil {
		t.Fatal(err)
	}
	// Objects of one size fill each memtable with as many: count them in
	// one, then fill the next to the brim, so that the ref's write is the
	// one that makes Badger replace it.
	mems := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
		return len(m)
	}
	put := func(i int) {
		t.Helper()
		if _, err := r.PutObject(KindBlob, fmt.Appendf(nil, "one by one %06d %s", i, bytes.Repeat([]byte{byte(i)}, 50<<10))); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	rotations := func() int {
		before := mems()
		for ; ; i++ {
			put(i)
			if n := mems(); n != before {
				i++
				return n
			}
		}
	}
	rotations()
	start := i
	rotations()
	perTable := i - start
	for k := 0; k < perTable-1; k++ {
		put(i)
		i++
	}
	if err := r.UpdateBranch("example.com.", "other", ZeroHash, res.Commit, nil); err != nil {
		t.Fatal(err)
	}
	logs := dirtyLogPages(t, dir)
	active := ""
	for name := range logs {
		active = max(active, name)
	}
	for name, kb := range logs {
		if name != active && kb > unsyncedSlackKiB {
			t.Fatalf("after a ref update, %d KiB of the replaced memtable's log %s are not written back (dirty KiB by log: %v)", kb, name, logs)
		}
	}
}
