package replicate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// heldSnapshots hands out one repository; the first hold Acquire calls
// block until release is closed, so a test can keep requests inside the
// server for as long as it likes. It records how many requests held a
// snapshot at once.
type heldSnapshots struct {
	r       *repo.Repo
	hold    atomic.Int64
	release chan struct{}
	cur     atomic.Int64
	peak    atomic.Int64
	entered atomic.Int64
}

func (h *heldSnapshots) Acquire() (*repo.Repo, func(), error) {
	n := h.cur.Add(1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	h.entered.Add(1)
	if h.hold.Add(-1) >= 0 {
		<-h.release
	}
	return h.r, func() { h.cur.Add(-1) }, nil
}

// walkBody is a walk (or pack) request for tip.
func walkBody(tip repo.Hash) string {
	return `{"roots":["` + tip.String() + `"],"known":[]}`
}

type answer struct {
	status int
	retry  string
	body   string
}

func post(t *testing.T, url, body string) answer {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return answer{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("POST %s: read: %v", url, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServerGateBoundsExpensiveRequests(t *testing.T) {
	r := openRepo(t, t.TempDir())
	tip := mustSynthetic(t, r, "example.com.", "main", 50)
	snaps := &heldSnapshots{r: r, release: make(chan struct{})}
	snaps.hold.Store(2) // the two that get a slot
	stats := &server.ServerStats{}
	log := &warnLog{}
	srv := &replicate.Server{Snapshots: snaps, Stats: stats, Logger: log, MaxConcurrent: 2, MaxQueued: 3, QueueWait: time.Minute}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	// 10 expensive requests at once, of all three kinds: 2 run, 3 wait,
	// 5 are told to come back later.
	paths := []string{"/v0/objects/walk", wire.PackPath, wire.BatchPath}
	answers := make([]answer, 10)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := paths[i%len(paths)]
			body := walkBody(tip)
			if p == wire.BatchPath {
				body = `{"hashes":["` + tip.String() + `"]}`
			}
			answers[i] = post(t, ts.URL+p, body)
		}()
	}
	waitFor(t, "2 running, 3 queued, 5 refused", func() bool {
		return snaps.entered.Load() == 2 && stats.Queued.Load() == 3 && stats.Busy.Load() == 5
	})
	// Cheap requests are not queued behind them.
	resp, err := http.Get(ts.URL + "/v0/objects/" + tip.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("object GET while busy: %d", resp.StatusCode)
	}
	close(snaps.release)
	wg.Wait()

	var ok, busy int
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			busy++
			if s, err := strconv.Atoi(a.retry); err != nil || s < 1 || s > 45 {
				t.Errorf("request %d: Retry-After %q, want 1-45 seconds", i, a.retry)
			}
			if !strings.Contains(a.body, "server busy") {
				t.Errorf("request %d: 503 body %q", i, a.body)
			}
		default:
			t.Errorf("request %d: status %d %q", i, a.status, a.body)
		}
	}
	if ok != 5 || busy != 5 {
		t.Errorf("%d answered, %d refused; want 5 and 5", ok, busy)
	}
	// The object GET also acquired a snapshot: at most 2 expensive + 1.
	if p := stats.PeakRunning.Load(); p != 2 {
		t.Errorf("peak expensive requests %d, want 2", p)
	}
	if p := snaps.peak.Load(); p > 3 {
		t.Errorf("peak snapshot holders %d, want at most 3", p)
	}
	// Shedding load is one warning, not an error per refused request.
	if w := log.get(); len(w) != 1 || !strings.Contains(w[0], "busy") {
		t.Errorf("warnings %q, want one saying the server is busy", w)
	}
}

// warnLog records a server's warnings and errors.
type warnLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *warnLog) add(level, msg string, kv []interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprint(level, " ", msg, kv))
}

func (l *warnLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *warnLog) Error(msg string, kv ...interface{}) { l.add("error", msg, kv) }
func (l *warnLog) Warn(msg string, kv ...interface{})  { l.add("warn", msg, kv) }
func (l *warnLog) Info(string, ...interface{})         {}
func (l *warnLog) Debug(string, ...interface{})        {}

func TestServerGateQueueWait(t *testing.T) {
	r := openRepo(t, t.TempDir())
	tip := mustSynthetic(t, r, "example.com.", "main", 5)
	snaps := &heldSnapshots{r: r, release: make(chan struct{})}
	snaps.hold.Store(1)
	srv := &replicate.Server{Snapshots: snaps, MaxConcurrent: 1, MaxQueued: 1, QueueWait: 100 * time.Millisecond}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	done := make(chan answer, 1)
	go func() { done <- post(t, ts.URL+"/v0/objects/walk", walkBody(tip)) }()
	waitFor(t, "the first walk to hold the slot", func() bool { return snaps.entered.Load() == 1 })
	a := post(t, ts.URL+"/v0/objects/walk", walkBody(tip))
	if a.status != http.StatusServiceUnavailable || a.retry == "" || !strings.Contains(a.body, "came free in time") {
		t.Errorf("queued walk: %d Retry-After %q %q; want 503 after its wait", a.status, a.retry, a.body)
	}
	close(snaps.release)
	if a := <-done; a.status != http.StatusOK {
		t.Errorf("held walk: %d %q", a.status, a.body)
	}
}

func TestServerBusyClientRetries(t *testing.T) {
	// No queue and one slot, held for a second by another request: our
	// client's pack gets 503, waits the Retry-After and gets in.
	forEachMode(t, func(t *testing.T, v0 bool) {
		p := newPrimary(t, v0, nil)
		mustSynthetic(t, p.repo, "example.com.", "main", 30)
		snaps := &heldSnapshots{r: p.repo, release: make(chan struct{})}
		snaps.hold.Store(1)
		p.srv.Snapshots = snaps
		p.srv.MaxConcurrent, p.srv.MaxQueued = 1, -1
		tip := mustBranch(t, p.repo, "example.com.", "main")
		go post(t, p.url()+"/v0/objects/walk", walkBody(tip))
		waitFor(t, "the slot to be held", func() bool { return snaps.entered.Load() == 1 })
		time.AfterFunc(time.Second, func() { close(snaps.release) })
		local := openRepo(t, t.TempDir())
		c := newClient(t, p.url(), local, func(o *replicate.ClientOptions) { o.RetryMaxDelay = 5 * time.Second })
		if _, err := c.PullWith(context.Background(), replicate.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		if p.stats.Busy.Load() == 0 {
			t.Error("the client was never refused: the test did not exercise the gate")
		}
		assertConverged(t, p.repo, local)
	})
}

// batchFrames sends a batch request for hashes and reads the response:
// the frames' hashes, their payload bytes and the count trailer.
func batchFrames(t *testing.T, url string, hashes []string) (got []string, payload int64, trailer string) {
	t.Helper()
	body, err := json.Marshal(wire.BatchRequest{Hashes: hashes})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+wire.BatchPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("batch: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			break
		}
		if err != nil {
			t.Fatalf("frame header: %v", err)
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("frame header %q", line)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			t.Fatal(err)
		}
		got = append(got, f[0])
		payload += n
	}
	return got, payload, resp.Trailer.Get(wire.ObjectCountTrailer)
}

// apexTree returns the root tree of a branch tip and its size.
func apexTree(t *testing.T, r *repo.Repo, tip repo.Hash) (repo.Hash, int) {
	t.Helper()
	_, p, err := r.Get(tip)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(p)
	if err != nil {
		t.Fatal(err)
	}
	_, tp, err := r.Get(c.Tree)
	if err != nil {
		t.Fatal(err)
	}
	return c.Tree, len(tp)
}

func TestServerBatchAmplification(t *testing.T) {
	// The attack: one request naming a flat zone's large apex tree 50,000
	// times. It gets the tree once.
	p := newPrimary(t, false, nil)
	tip, err := repotest.Synthetic(p.repo, repotest.SyntheticOptions{Zone: "example.com.", N: 5000})
	if err != nil {
		t.Fatal(err)
	}
	tree, size := apexTree(t, p.repo, tip)
	hashes := make([]string, 50000)
	for i := range hashes {
		hashes[i] = tree.String()
	}
	got, payload, trailer := batchFrames(t, p.url(), hashes)
	if len(got) != 1 || got[0] != tree.String() || payload != int64(size) || trailer != "1" {
		t.Errorf("%d frames, %d payload bytes, trailer %q; want the %d-byte tree once", len(got), payload, trailer, size)
	}
}

func TestServerBatchResponseCap(t *testing.T) {
	p := newPrimary(t, false, nil)
	tip := mustSynthetic(t, p.repo, "example.com.", "main", 200)
	p.srv.MaxBatchResponseBytes = 2048
	var all []string
	var total int64
	for h := range repotest.Closure(t, p.repo, tip) {
		_, b, err := p.repo.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, h.String())
		total += int64(len(b))
	}
	if total <= 4096 {
		t.Fatalf("closure of %d bytes is too small for the test", total)
	}
	got, payload, trailer := batchFrames(t, p.url(), all)
	if len(got) == 0 || len(got) >= len(all) || trailer != strconv.Itoa(len(got)) {
		t.Fatalf("%d of %d frames, trailer %q: want a stream cut short with its trailer", len(got), len(all), trailer)
	}
	for i, h := range got {
		if h != all[i] {
			t.Errorf("frame %d is %s, want %s (request order)", i, h, all[i])
		}
	}
	if payload > 2048 {
		t.Errorf("%d payload bytes, cap 2048", payload)
	}
	if p.stats.BatchCapped.Load() != 1 {
		t.Errorf("BatchCapped = %d, want 1", p.stats.BatchCapped.Load())
	}
	// One object larger than the cap still comes: every request makes
	// progress.
	tree, size := apexTree(t, p.repo, tip)
	if size <= 2048 {
		t.Fatalf("apex tree of %d bytes is too small for the test", size)
	}
	got, _, _ = batchFrames(t, p.url(), []string{tree.String(), all[0]})
	if len(got) != 1 || got[0] != tree.String() {
		t.Errorf("frames %v, want the large tree alone", got)
	}
}

func TestBatchCapClientFetchesTheRest(t *testing.T) {
	// Our client, fetching with batch, gets short streams and asks again
	// for the rest until it has everything.
	withoutPack.Store(t, true)
	t.Cleanup(func() { withoutPack.Delete(t) })
	p := newPrimary(t, false, nil)
	mustSynthetic(t, p.repo, "example.com.", "main", 300)
	p.srv.MaxBatchResponseBytes = 4096
	local := openRepo(t, t.TempDir())
	c := newClient(t, p.url(), local, nil)
	res, err := c.PullWith(context.Background(), replicate.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.stats.BatchCapped.Load() < 2 {
		t.Errorf("BatchCapped = %d: the cap did not cut the transfer into several streams", p.stats.BatchCapped.Load())
	}
	assertConverged(t, p.repo, local)
	t.Logf("%d objects in %d requests, %d capped streams", res.Objects, res.Requests, p.stats.BatchCapped.Load())
}
