package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func init() {
	register("import", "commit a zone file as a zone's whole content on a branch", runImport)
}

// importConfig is what the import flags (and the author variables) say.
type importConfig struct {
	repo, zone, branch, file, message string
	json                              bool
	// author is the commit author: ZONEGIT_AUTHOR_NAME and
	// ZONEGIT_AUTHOR_EMAIL, as the zonegit tools read them; repo's
	// defaults where unset.
	author repo.Signature
}

func parseImportFlags(args []string, stderr io.Writer) (*importConfig, error) {
	fs := newFlagSet("import", stderr)
	c := &importConfig{author: repo.Signature{Name: os.Getenv("ZONEGIT_AUTHOR_NAME"), Email: os.Getenv("ZONEGIT_AUTHOR_EMAIL")}}
	fs.StringVar(&c.repo, "repo", "", "repository directory; created if absent (required)")
	fs.StringVar(&c.zone, "zone", "", "zone name, lowercase with the trailing dot, e.g. example.com. (required)")
	fs.StringVar(&c.branch, "branch", repo.DefaultBranch, "branch to commit on")
	fs.StringVar(&c.file, "file", "", "RFC 1035 zone file to import (required)")
	fs.StringVar(&c.message, "m", "", "commit message (default \"import <file name>\")")
	fs.BoolVar(&c.json, "json", false, "print the result as JSON")
	if err := parseArgs(fs, args, "repo", "zone", "file"); err != nil {
		return nil, err
	}
	if err := repo.ValidateZone(c.zone); err != nil {
		return nil, fmt.Errorf("--zone: %w", err)
	}
	if err := repo.ValidateBranch(c.branch); err != nil {
		return nil, fmt.Errorf("--branch: %w", err)
	}
	return c, nil
}

// importJSON is the --json output.
type importJSON struct {
	Zone    string `json:"zone"`
	Branch  string `json:"branch"`
	Commit  string `json:"commit"`
	Tree    string `json:"tree"`
	RRsets  int    `json:"rrsets"`
	Objects int    `json:"objects"`
	Changed bool   `json:"changed"`
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseImportFlags(args, stderr)
	if err != nil {
		return parseFailed(stderr, "import", err)
	}
	res, err := importFile(ctx, cfg)
	if err != nil {
		return fail(stderr, "import: %v", err)
	}
	if cfg.json {
		if err := json.NewEncoder(stdout).Encode(importJSON{
			Zone: res.Zone, Branch: res.Branch, Commit: res.Commit.String(), Tree: res.Tree.String(),
			RRsets: res.RRsets, Objects: res.Objects, Changed: res.Changed,
		}); err != nil {
			return fail(stderr, "import: %v", err)
		}
		return exitOK
	}
	// stdout carries the hashes only, so scripts can read them; the
	// summary is for people.
	fmt.Fprintf(stdout, "commit %s\ntree %s\n", res.Commit, res.Tree)
	if res.Changed {
		fmt.Fprintf(stderr, "%s: %d RRsets, %d objects, commit %s\n", repo.BranchRef(res.Zone, res.Branch), res.RRsets, res.Objects, res.Commit.Short())
	} else {
		fmt.Fprintf(stderr, "%s: unchanged (%d RRsets); no commit made\n", repo.BranchRef(res.Zone, res.Branch), res.RRsets)
	}
	return exitOK
}

func importFile(ctx context.Context, cfg *importConfig) (*repo.ImportResult, error) {
	f, err := os.Open(cfg.file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Bulk: an import into a new repository writes everything in one
	// session; merging it into one level at Close beats compacting as it
	// goes (see repo.Options.Bulk).
	r, err := repo.Open(cfg.repo, repo.Options{Bulk: true})
	if err != nil {
		return nil, err
	}
	res, err := r.Import(ctx, repo.ImportOptions{
		Zone: cfg.zone, Branch: cfg.branch, Source: f, SourceName: cfg.file, Message: cfg.message, Author: cfg.author,
	})
	if cerr := r.Close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("close repository: %w", cerr)
	}
	return res, err
}
