package repo

import (
	"context"
	"errors"
	"io"
)

// ImportOptions describe one zone-file import.
type ImportOptions struct {
	Zone       string    // FQDN with trailing dot, lowercase
	Branch     string    // default "main"
	Source     io.Reader // RFC 1035 master file
	SourceName string    // file name for error messages
	Message    string    // commit message; a default names the file
	Author     Signature // Name/Email; When/TZ default to now, local zone
}

// ImportResult says what an import produced.
type ImportResult struct {
	Zone, Branch string
	Commit       Hash // new tip (the old tip when Changed is false)
	Tree         Hash
	Parent       Hash // ZeroHash for a root commit
	RRsets       int
	Objects      int  // objects in the new commit's closure
	Changed      bool // false: the tree equals the tip's tree, no commit made
}

// Import parses a master file and commits it as the zone's whole content.
// TODO(import): implemented in the repo import issue.
func (r *Repo) Import(ctx context.Context, opts ImportOptions) (*ImportResult, error) {
	return nil, errors.New("import: not implemented yet")
}
