package resources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// newLocalRepo builds a repository with the given zones' main branches and
// returns their commit hashes.
func newLocalRepo(t *testing.T, dir string, zones ...string) map[string]string {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]string{}
	for _, z := range zones {
		res, err := r.Import(context.Background(), repo.ImportOptions{
			Zone:   z,
			Source: strings.NewReader("$ORIGIN " + z + "\n@ 300 IN SOA ns. host. 1 7200 3600 1209600 300\n"),
		})
		if err != nil {
			t.Fatal(err)
		}
		out[z+"/main"] = res.Commit.String()
	}
	return out
}

func TestReadLocalRefs(t *testing.T) {
	base := t.TempDir()
	if refs, exists, err := readLocalRefs(filepath.Join(base, "absent")); exists || err != nil || refs != nil {
		t.Errorf("absent: %v %v %v, want not existing", refs, exists, err)
	}
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if refs, exists, err := readLocalRefs(empty); !exists || err != nil || len(refs) != 0 {
		t.Errorf("empty dir: %v %v %v, want an existing repository without branches", refs, exists, err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readLocalRefs(file); !errors.Is(err, repo.ErrNotRepository) {
		t.Errorf("a file: %v, want ErrNotRepository", err)
	}
	other := filepath.Join(base, "other")
	if err := os.MkdirAll(filepath.Join(other, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, exists, err := readLocalRefs(other); !exists || !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(err.Error(), `"sub"`) {
		t.Errorf("a directory of other things: %v %v, want ErrNotRepository naming sub", exists, err)
	}
	full := filepath.Join(base, "full")
	want := newLocalRepo(t, full, "example.com.", "example.org.")
	refs, exists, err := readLocalRefs(full)
	if !exists || err != nil {
		t.Fatalf("repository: %v %v", exists, err)
	}
	if got := replicate.RefsMap(refs); len(got) != 2 || got["example.com./main"] != want["example.com./main"] || got["example.org./main"] != want["example.org./main"] {
		t.Errorf("refs = %v, want %v", got, want)
	}
}
