package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func importForFsck(t *testing.T) (dir string, res *repo.ImportResult) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err = r.Import(context.Background(), repo.ImportOptions{Zone: "example.com.", Source: strings.NewReader(cliZone), SourceName: "t.zone"})
	if err != nil {
		t.Fatal(err)
	}
	return dir, res
}

func TestFsckCLISound(t *testing.T) {
	dir, res := importForFsck(t)
	code, out, errOut := runCLI(t, "fsck", "--repo", dir)
	if code != exitOK || !strings.HasPrefix(out, "ok: 2 refs") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "fsck", "--repo", dir, "--json")
	var rep fsckJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	// The commit's closure plus HEAD's symref.
	if code != exitOK || !rep.OK || rep.Objects != res.Objects+1 || rep.Unreachable != 0 || len(rep.Problems) != 0 {
		t.Errorf("exit %d, report %+v; want sound with %d objects", code, rep, res.Objects+1)
	}
}

func TestFsckCLIDamaged(t *testing.T) {
	dir, res := importForFsck(t)
	// Delete the root tree behind the package's back.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error { return txn.Delete(append([]byte("o/"), res.Tree[:]...)) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "fsck", "--repo", dir)
	if code != exitFailed || !strings.Contains(out, "missing "+res.Tree.String()) || !strings.Contains(out, "NOT SOUND") {
		t.Errorf("exit %d, stdout %q; want 1 naming the missing tree", code, out)
	}
	code, out, _ = runCLI(t, "fsck", "--repo", dir, "--json")
	var rep fsckJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if code != exitFailed || rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Kind != "missing" || rep.Problems[0].Hash != res.Tree.String() {
		t.Errorf("exit %d, report %+v", code, rep)
	}
}

func TestFsckCLIUsage(t *testing.T) {
	if code, _, errOut := runCLI(t, "fsck"); code != exitUsage || !strings.Contains(errOut, "--repo is required") {
		t.Errorf("fsck without --repo: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "fsck", "--repo", t.TempDir(), "x"); code != exitUsage || !strings.Contains(errOut, `"x"`) {
		t.Errorf("fsck with an argument: exit %d, %q", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "absent")
	if code, _, errOut := runCLI(t, "fsck", "--repo", missing); code != exitFailed || !strings.Contains(errOut, "absent") {
		t.Errorf("fsck of a missing directory: exit %d, %q", code, errOut)
	}
}

// TestFsckWaitsForAWriter: fsck never reads a directory a writer has
// open; it waits for the writer (--wait) and then checks, or says clearly
// that a writer is still at work.
func TestFsckWaitsForAWriter(t *testing.T) {
	dir, _ := importForFsck(t)
	w, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "fsck", "--repo", dir, "--wait", "300ms")
	if code != exitFailed || !strings.Contains(errOut, "is writing it") || !strings.Contains(errOut, dir) {
		t.Errorf("fsck beside a writer: exit %d, %q; want 1 saying a writer has %s", code, errOut, dir)
	}
	done := make(chan string, 1)
	go func() {
		code, out, errOut := runCLI(t, "fsck", "--repo", dir, "--wait", "1m")
		done <- fmt.Sprintf("%d %s%s", code, out, errOut)
	}()
	time.Sleep(300 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-done; !strings.HasPrefix(got, "0 ok: 2 refs") || !strings.Contains(got, "waiting up to 1m0s for the writer") {
		t.Errorf("fsck waiting for a writer: %q; want exit 0 with a sound report after a note that it waits", got)
	}
}
