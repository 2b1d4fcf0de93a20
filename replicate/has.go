package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// maxCheckedCommit bounds how much of a commit HasCommit reads to verify
// it. Commits are a few hundred bytes; anything near this is not one.
const maxCheckedCommit = 1 << 20

// HasCommit asks the primary whether it has commit h: one GET
// /v0/objects/<hash> (retried like every request). It returns nil when the
// primary serves h as a commit whose payload hashes to h, and otherwise an
// error saying what the primary answered: repo.ErrNotFound wrapped when it does
// not have the object, or a message naming the kind it has instead.
//
// The protocol has no HEAD: the kind comes from X-Object-Kind, and the body
// of anything that is not a commit (a tree can be megabytes) is not read.
func (c *Client) HasCommit(ctx context.Context, h repo.Hash) error {
	tr, err := c.transport()
	if err != nil {
		return err
	}
	u := tr.base + wire.ObjectPath + h.String()
	resp, err := tr.do(ctx, http.MethodGet, wire.ObjectPath+h.String(), nil, "")
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return fmt.Errorf("primary %s does not have commit %s: %w", tr.base, h, repo.ErrNotFound)
		}
		return err
	}
	defer drain(resp)
	kind := resp.Header.Get(wire.ObjectKindHeader)
	if repo.Kind(kind) != repo.KindCommit {
		if kind == "" {
			return fmt.Errorf("GET %s: no %s header (is this a zonegit primary?)", u, wire.ObjectKindHeader)
		}
		return fmt.Errorf("object %s on primary %s is a %s, not a commit", h, tr.base, clipStr(kind))
	}
	payload, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckedCommit+1))
	if err != nil {
		return fmt.Errorf("GET %s: reading the commit: %w", u, err)
	}
	if len(payload) > maxCheckedCommit {
		return fmt.Errorf("GET %s: the commit is larger than %d bytes", u, maxCheckedCommit)
	}
	if got := repo.HashObject(repo.KindCommit, payload); got != h {
		return fmt.Errorf("GET %s: the primary sent a commit hashing to %s: %w", u, got, repo.ErrHashMismatch)
	}
	return nil
}
