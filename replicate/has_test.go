package replicate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
	"github.com/zonegit/terraform-provider-zonegit/repo/repotest"
)

// TestHasCommit: one GET per question; a commit the primary has is found, a
// missing one is repo.ErrNotFound, a tree is "not a commit" (and its body
// is not read), and a primary lying about a commit's bytes is caught.
func TestHasCommit(t *testing.T) {
	r, err := repo.Open(t.TempDir(), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	commit, err := repotest.SyntheticZone(r, "example.com.", "main", 20)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := r.Get(commit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(payload)
	if err != nil {
		t.Fatal(err)
	}

	var requests atomic.Int64
	var lie atomic.Bool
	srv := &replicate.Server{SnapshotFn: func() (*repo.Repo, error) { return r, nil }}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		requests.Add(1)
		if lie.Load() {
			// A hostile primary: claims a commit, sends other bytes.
			w.Header().Set(wire.ObjectKindHeader, "commit")
			_, _ = w.Write([]byte("tree " + strings.Repeat("0", 64) + "\n"))
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(ts.Close)
	client, err := replicate.NewClientWithOptions(nil, replicate.ClientOptions{PrimaryURL: ts.URL, RetryAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ask := func(h repo.Hash) error {
		t.Helper()
		before := requests.Load()
		err := client.HasCommit(ctx, h)
		if n := requests.Load() - before; n != 1 {
			t.Errorf("HasCommit(%s) made %d requests, want 1", h.Short(), n)
		}
		return err
	}

	if err := ask(commit); err != nil {
		t.Errorf("the primary's tip: %v", err)
	}
	missing := repo.HashObject(repo.KindCommit, []byte("no such commit"))
	if err := ask(missing); !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), missing.String()) {
		t.Errorf("a missing commit: %v, want ErrNotFound naming it", err)
	}
	if err := ask(c.Tree); err == nil || !strings.Contains(err.Error(), "is a tree, not a commit") {
		t.Errorf("a tree: %v, want \"is a tree, not a commit\"", err)
	}
	lie.Store(true)
	if err := ask(commit); !errors.Is(err, repo.ErrHashMismatch) {
		t.Errorf("a lying primary: %v, want ErrHashMismatch", err)
	}
}
