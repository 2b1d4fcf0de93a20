// Package replicate implements pull-mode replication of a zonegit
// repository from a primary daemon to one or more secondaries: the client
// (Client, Pull, Run) here, and, through type aliases, the server that
// answers it (Server, RegisterHandlers).
//
// The protocol is a content-addressed Merkle walk over plain HTTP, wire
// compatible with the zonegit daemon (v0); package wire holds the whole
// contract, its extensions and their encoders and decoders.
//
// Guarantees: every object received is verified (hash and kind) before it is
// stored; refs move with compare-and-swap only after everything they reach is
// stored and synced; a branch that fails is reported, the others still apply.
//
// # Packages
//
// Client and server never call each other; each speaks the protocol through
// package wire, and both use the one walk (package walk) over trees
// compared in one place (repo.DiffTree):
//
//	replicate (client: Client, Pull, Run; facade: Server, BasePath, ...)
//	 ├──> replicate/server   HTTP handlers, limits, Snapshotter
//	 │     ├──> replicate/walk
//	 │     └──> replicate/wire
//	 ├──> replicate/walk     which objects a client lacks (Missing, Check)
//	 ├──> replicate/wire     paths, bodies, frames, request limits
//	 └──> repo               objects, trees (DiffTree), refs, the store
//
// replicate imports replicate/server only for the aliases below; no client
// code calls it.
//
// # One way to do each thing
//
//   - Build a client: NewClient(url, local) for the defaults; it never
//     fails (a bad URL is reported by every pull). NewClientWithOptions(local,
//     opts) for anything else (TLS, token, headers, timeouts, logging); it
//     reports a bad setting at once.
//   - Pull once: Pull(ctx) replicates every branch and returns only the
//     error; it is PullWith(ctx, PullOptions{}). PullWith selects, pins and
//     prunes, and returns the per-branch result.
//   - Poll: Run(ctx) until Stop or ctx ends; OnPull sees every pull.
//   - Read the primary's refs: RefsInfo(ctx) (GET /v0/refs), with the
//     extensions the primary announced; Plan turns refs into what a pull
//     would do.
//
// # Names
//
// "Walk" is the algorithm (package walk: walk.Missing on the server,
// walk.Check in the client's closure check); the client's request for it
// is a POST to wire.WalkPath. A "snapshot" is a read-only handle on a
// repository (server.Snapshotter, Server.SnapshotFn), nothing else.
package replicate

import (
	"github.com/zonegit/terraform-provider-zonegit/replicate/server"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
)

// BasePath is the URL prefix every replication endpoint sits under (see
// package wire).
const BasePath = wire.BasePath

// Types of the wire protocol, named here as the package has always named
// them; package wire documents them.
type (
	Branch       = wire.Branch
	RefsResponse = wire.RefsResponse
	WalkRequest  = wire.WalkRequest
	WalkResponse = wire.WalkResponse
)

// Server serves a repository to secondaries; see package server.
// (*Server).RegisterHandlers mounts it on a mux.
type Server = server.Server
