package main

// Tests of the real binary against real Badger directories for what only a
// process can show: a writer killed mid-write, SIGBUS on a full filesystem,
// serve beside another process's writes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/internal/dirstate"

	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// realCLI builds zonegit-replicate into the test's temporary directory.
func realCLI(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("signals and tmpfs")
	}
	bin := filepath.Join(t.TempDir(), "zonegit-replicate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs the binary to completion and returns its exit code and output.
func runBin(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// crashSigns are what a crash prints instead of an error message.
var crashSigns = []string{"SIGBUS", "panic:", "goroutine ", "fatal error", "unexpected fault"}

func noCrash(t *testing.T, what, stderr string) {
	t.Helper()
	for _, s := range crashSigns {
		if strings.Contains(stderr, s) {
			t.Errorf("%s crashed (%q in stderr):\n%s", what, s, stderr)
			return
		}
	}
}

// serveProc is a running `serve` process.
type serveProc struct {
	cmd      *exec.Cmd
	url      string
	stderr   *syncBuffer
	done     chan error // Wait's result, put back by whoever reads it
	stopOnce sync.Once
	stopErr  error
}

func startServeProc(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.stop(t) }) // tests that care check stop themselves
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve exited (%v): %s", err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no address: %s", p.stderr.String())
		}
	}
}

// running reports whether serve is still up.
func (p *serveProc) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// stop sends SIGTERM once and returns the exit error (nil: exit 0).
func (p *serveProc) stop(t *testing.T) error {
	t.Helper()
	p.stopOnce.Do(func() {
		if p.running() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case p.stopErr = <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Error("serve did not stop on SIGTERM")
			p.stopErr = <-p.done
		}
	})
	return p.stopErr
}

// zoneText is a zone of n A records with the given serial; from one
// serial to the next the SOA and one record change.
func zoneText(serial, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host %d 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n", serial)
	for i := 0; i < n; i++ {
		ttl := 300
		if i == serial%n {
			ttl = 60 + serial
		}
		fmt.Fprintf(&b, "h%d %d IN A 10.%d.%d.%d\n", i, ttl, (i>>16)&255, (i>>8)&255, i&255)
	}
	return b.String()
}

// importBin imports text on main with the binary and returns the commit.
func importBin(t *testing.T, bin, dir, text string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runBin(t, bin, "import", "--repo", dir, "--zone", "example.com.", "--file", f)
	if code != exitOK {
		return "", fmt.Errorf("import exit %d: %s", code, errOut)
	}
	commit, ok := strings.CutPrefix(strings.SplitN(out, "\n", 2)[0], "commit ")
	if !ok {
		return "", fmt.Errorf("import printed %q", out)
	}
	return commit, nil
}

// localTip reads main of dir read-only.
func localTip(t *testing.T, dir string) string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := r.Branch("example.com.", "main")
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestServeBesideWriterLoop: one process imports into a directory again and
// again while `serve` serves it and clients pull from it. serve must not
// crash (it used to die of SIGBUS re-opening the directory), the directory
// must not be damaged (serve's read-only re-opens used to delete the
// writer's new tables), every pull succeeds, and serve ends up serving the
// last commit.
func TestServeBesideWriterLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 15 s")
	}
	bin := realCLI(t)
	primary := filepath.Join(t.TempDir(), "primary")
	first, err := importBin(t, bin, primary, zoneText(1, 3000))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProc(t, bin, "--repo", primary, "--poll", "100ms")

	const runFor = 12 * time.Second
	stopAt := time.Now().Add(runFor)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		last    = first
		imports int
		pulls   int
		fails   []string
	)
	failf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fails = append(fails, fmt.Sprintf(format, args...))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for serial := 2; time.Now().Before(stopAt); serial++ {
			c, err := importBin(t, bin, primary, zoneText(serial, 3000+serial%7*100))
			if err != nil {
				failf("import %d: %v", serial, err)
				continue
			}
			mu.Lock()
			last, imports = c, imports+1
			mu.Unlock()
		}
	}()
	replicas := make([]string, 2)
	for i := range replicas {
		replicas[i] = filepath.Join(t.TempDir(), fmt.Sprintf("replica%d", i))
		wg.Add(1)
		go func(dir string) {
			defer wg.Done()
			for time.Now().Before(stopAt) {
				code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", dir)
				noCrash(t, "pull", errOut)
				if code != exitOK {
					failf("pull into %s: exit %d: %s", dir, code, errOut)
				}
				mu.Lock()
				pulls++
				mu.Unlock()
			}
		}(replicas[i])
	}
	wg.Wait()
	t.Logf("%d imports and %d pulls beside serve in %s", imports, pulls, runFor)
	for _, f := range fails {
		t.Error(f)
	}
	if imports < 3 || pulls < 3 {
		t.Errorf("only %d imports and %d pulls ran", imports, pulls)
	}
	if !srv.running() {
		t.Fatalf("serve died beside the writer: %s", srv.stderr.String())
	}

	// serve sees a new commit within about a second of the writer closing
	// the directory.
	last, err = importBin(t, bin, primary, zoneText(1_000_000, 3000))
	if err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	deadline := closed.Add(5 * time.Second)
	for {
		tip, code := mainTip(t, http.DefaultClient, srv.url)
		if code == http.StatusOK && tip == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve still serves %s (status %d), want the last commit %s", tip, code, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("serve served the new commit %s after the writer closed", time.Since(closed).Round(time.Millisecond))
	final := filepath.Join(t.TempDir(), "final")
	if code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", final); code != exitOK {
		t.Fatalf("final pull: exit %d: %s", code, errOut)
	}
	if got := localTip(t, final); got != last {
		t.Errorf("final pull: main = %s, want %s", got, last)
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("serve exit: %v", err)
	}
	noCrash(t, "serve", srv.stderr.String())

	// Nothing is lost: the primary and every replica open and are sound.
	for _, dir := range append([]string{primary, final}, replicas...) {
		if code, out, errOut := runBin(t, bin, "fsck", "--repo", dir); code != exitOK {
			t.Errorf("fsck %s: exit %d: %s%s", dir, code, out, errOut)
		}
	}
	if got := localTip(t, primary); got != last {
		t.Errorf("primary main = %s, want the last import %s", got, last)
	}
}

// TestCrashedWriterCLI: a writer SIGKILLed mid-write leaves a write-ahead
// log that Badger's read-only open refuses ("Log truncate required");
// fsck and serve read the repository anyway, without changing it, and a
// writer afterwards recovers it.
func TestCrashedWriterCLI(t *testing.T) {
	bin := realCLI(t)
	dir := filepath.Join(t.TempDir(), "repo")
	first, err := importBin(t, bin, dir, zoneText(1, 200))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "big.zone")
	if err := os.WriteFile(f, []byte(zoneText(2, 300_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "import", "--repo", dir, "--zone", "example.com.", "--file", f)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it holds the directory and has written for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "LOCK")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the import never opened the repository")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(m) == 0 {
		t.Fatal("the killed import left no write-ahead log")
	}

	before := dirstate.Listing(t, dir)
	code, out, errOut := runBin(t, bin, "fsck", "--repo", dir)
	noCrash(t, "fsck", errOut)
	if code != exitOK || !strings.HasPrefix(out, "ok:") {
		t.Errorf("fsck after a crash: exit %d: %s%s", code, out, errOut)
	}
	dirstate.Unchanged(t, "fsck", dir, before)

	srv := startServeProc(t, bin, "--repo", dir)
	tip, status := mainTip(t, http.DefaultClient, srv.url)
	if status != http.StatusOK || tip != first {
		t.Errorf("serve after a crash: main %s (status %d), want %s", tip, status, first)
	}
	replica := filepath.Join(t.TempDir(), "replica")
	if code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", replica); code != exitOK {
		t.Errorf("pull from serve after a crash: exit %d: %s", code, errOut)
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("serve exit: %v", err)
	}
	dirstate.Unchanged(t, "serve", dir, before)

	next, err := importBin(t, bin, dir, zoneText(3, 200))
	if err != nil {
		t.Fatalf("writer after the crash: %v", err)
	}
	if code, out, errOut := runBin(t, bin, "fsck", "--repo", dir); code != exitOK {
		t.Errorf("fsck after recovery: exit %d: %s%s", code, out, errOut)
	}
	if got := localTip(t, dir); got != next {
		t.Errorf("main = %s, want %s", got, next)
	}
}

// TestDamagedRepositoryCLI: a truncated table or MANIFEST is a clear error
// from fsck, pull, import and serve (never a panic), and none of them
// changes a byte of the directory.
func TestDamagedRepositoryCLI(t *testing.T) {
	bin := realCLI(t)
	for _, c := range []struct {
		name, file, what string
	}{
		{"truncated table", "*.sst", "table "}, // the import's one table, whatever its number
		{"truncated MANIFEST", "MANIFEST", "MANIFEST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			if _, err := importBin(t, bin, dir, zoneText(1, 2000)); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob(filepath.Join(dir, c.file))
			if err != nil || len(files) != 1 {
				t.Fatalf("%s in the imported repository: %v %v, want one", c.file, files, err)
			}
			p := files[0]
			if c.what == "table " {
				c.what += filepath.Base(p)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, fi.Size()-5); err != nil {
				t.Fatal(err)
			}
			before := dirstate.Listing(t, dir)

			code, out, errOut := runBin(t, bin, "fsck", "--repo", dir)
			noCrash(t, "fsck", errOut)
			if code != exitFailed || !strings.Contains(out, "damaged") || !strings.Contains(out, c.what) ||
				!strings.Contains(errOut, "delete the directory") {
				t.Errorf("fsck: exit %d\nstdout %s\nstderr %s\nwant 1 naming %s and what to do", code, out, errOut, c.what)
			}
			dirstate.Unchanged(t, "fsck", dir, before)

			code, _, errOut = runBin(t, bin, "pull", "--primary", "http://127.0.0.1:9", "--repo", dir)
			noCrash(t, "pull", errOut)
			if code != exitFailed || !strings.Contains(errOut, "is damaged") || !strings.Contains(errOut, c.what) ||
				!strings.Contains(errOut, "zonegit-replicate fsck --repo "+dir) {
				t.Errorf("pull into it: exit %d: %s", code, errOut)
			}
			dirstate.Unchanged(t, "pull", dir, before)

			if _, err := importBin(t, bin, dir, zoneText(2, 10)); err == nil || !strings.Contains(err.Error(), "is damaged") {
				t.Errorf("import into it: %v", err)
			}
			dirstate.Unchanged(t, "import", dir, before)

			srv := startServeProc(t, bin, "--repo", dir)
			if _, status := mainTip(t, http.DefaultClient, srv.url); status != http.StatusServiceUnavailable {
				t.Errorf("serve of a damaged repository: status %d, want 503", status)
			}
			if err := srv.stop(t); err != nil {
				t.Errorf("serve exit: %v", err)
			}
			if s := srv.stderr.String(); !strings.Contains(s, "is damaged") {
				t.Errorf("serve did not say the repository is damaged: %s", s)
			}
			noCrash(t, "serve", srv.stderr.String())
			dirstate.Unchanged(t, "serve", dir, before)
		})
	}
}

// mountTmpfs mounts a tmpfs of size on a new directory, or skips the test
// when this process may not mount (not root, or no mount permission in the
// container); TestNoSpaceIsAnError in package repo injects a full
// filesystem instead and runs everywhere.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root on Linux; package repo's TestNoSpaceIsAnError injects a full filesystem instead")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); package repo's TestNoSpaceIsAnError injects a full filesystem instead", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes into dir until its filesystem has only leave bytes free and
// returns the file it wrote.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
		break
	}
	if leave > 0 {
		if err := f.Truncate(max(n-leave, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestDiskFullCLI: pull and fsck on a full filesystem exit 1 with a clear
// "no space left on device" naming the repository (pull used to die of
// SIGBUS with a runtime dump, exit 2, when Badger wrote into a mapped file
// the filesystem could not back), and nothing already stored is lost.
func TestDiskFullCLI(t *testing.T) {
	bin := realCLI(t)
	mnt := mountTmpfs(t, "96m")

	primary := filepath.Join(t.TempDir(), "primary")
	w, err := repo.Open(primary, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repotest.SyntheticZone(w, "small.example.", "main", 50); err != nil {
		t.Fatal(err)
	}
	if _, err := repotest.Synthetic(w, repotest.SyntheticOptions{Zone: "big.example.", N: 150_000, Fanout: 300}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	srv := startServeProc(t, bin, "--repo", primary)
	replica := filepath.Join(mnt, "replica")

	// The small zone fits.
	if code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", replica, "--zone", "small.example."); code != exitOK {
		t.Fatalf("pull of the small zone: exit %d: %s", code, errOut)
	}
	small := smallTip(t, replica)
	pullFails := func(what string) {
		t.Helper()
		code, _, errOut := runBin(t, bin, "pull", "--primary", srv.url, "--repo", replica)
		noCrash(t, "pull", errOut)
		if code != exitFailed || !strings.Contains(errOut, "no space left on device") || !strings.Contains(errOut, replica) {
			t.Errorf("pull %s: exit %d: %s\nwant 1 with no space left on device naming %s", what, code, errOut, replica)
		}
	}

	// 16 MiB free, less than the big zone needs: refused before Badger
	// writes a byte.
	filler := fill(t, mnt, 16<<20)
	pullFails("with 16 MiB free")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// 72 MiB free: the pull starts and stops while the filesystem still
	// has room for what Badger writes on its own.
	filler = fill(t, mnt, 72<<20)
	pullFails("with 72 MiB free")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	// A writer killed mid-write leaves a sparse write-ahead log, which a
	// reader has to recover; on a full tmpfs reading its holes used to
	// fault.
	crashed := filepath.Join(mnt, "crashed")
	f := filepath.Join(t.TempDir(), "big.zone")
	if err := os.WriteFile(f, []byte(zoneText(1, 100_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "import", "--repo", crashed, "--zone", "example.com.", "--file", f)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(crashed, "LOCK")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the import never opened the repository")
		}
	}
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	// Full to the last byte.
	filler = fill(t, mnt, 0)
	for _, dir := range []string{replica, crashed} {
		code, out, errOut := runBin(t, bin, "fsck", "--repo", dir)
		noCrash(t, "fsck", errOut)
		switch {
		case code == exitOK && strings.HasPrefix(out, "ok:"):
		case code == exitFailed && strings.Contains(errOut, "no space left on device") && strings.Contains(errOut, dir):
		default:
			t.Errorf("fsck %s on a full tmpfs: exit %d\nstdout %s\nstderr %s\nwant a sound report or 1 with no space left naming the repository", dir, code, out, errOut)
		}
	}
	pullFails("on a full tmpfs")

	// Nothing was lost.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runBin(t, bin, "fsck", "--repo", replica); code != exitOK {
		t.Errorf("fsck after freeing space: exit %d: %s%s", code, out, errOut)
	}
	if got := smallTip(t, replica); got != small {
		t.Errorf("small.example./main = %s after the failed pulls, want %s", got, small)
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("serve exit: %v", err)
	}
}

func smallTip(t *testing.T, dir string) string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := r.Branch("small.example.", "main")
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
