package replicate

import (
	"net/http"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Server exposes a zonegit repo to secondaries over HTTP. Every request
// reads the current snapshot; correctness comes from content-addressed
// object bodies, not from session state. Server never writes.
type Server struct {
	// SnapshotFn returns the repository to serve for one request, so
	// secondaries see the latest commits. The server does not close it.
	SnapshotFn func() (*repo.Repo, error)

	// V0Only disables every extension: the server then behaves exactly as a
	// plain zonegit v0 daemon (no capabilities header, no tags, no batch).
	V0Only bool
	// Token, when set, requires "Authorization: Bearer <token>".
	Token string
	// TODO(server): limits, logger.
}

// RegisterHandlers wires the protocol endpoints onto mux under BasePath.
func (s *Server) RegisterHandlers(mux *http.ServeMux) {
	// TODO(server): implement.
}
