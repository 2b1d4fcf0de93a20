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
			if name != active && kb > 0 {
				t.Fatalf("round %d: after Flush, %d KiB of the replaced memtable's log %s are not written back (dirty KiB by log: %v)", round, kb, name, logs)
			}
		}
	}
}
