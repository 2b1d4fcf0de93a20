// Package replicate implements pull-mode replication of a zonegit
// repository from a primary daemon to one or more secondaries.
//
// The protocol is a content-addressed Merkle walk over plain HTTP, wire
// compatible with the zonegit daemon (v0):
//
//	GET  /v0/refs              -> {"zones":[...],"branches":[{"zone","name","hash"}]}
//	POST /v0/objects/walk      -> {"missing":[hex]}
//	GET  /v0/objects/<hex>     -> payload, X-Object-Kind header
//
// Our server may announce optional extensions in X-Zonegit-Capabilities on
// /v0/refs ("batch": one streamed response for many objects; "tags": tags in
// the refs response). A client that does not see the header speaks plain v0,
// and a server with extensions disabled is a plain v0 daemon.
//
// Guarantees: every object received is verified (hash and kind) before it is
// stored; refs move with compare-and-swap only after everything they reach is
// stored and synced; a branch that fails is reported, the others still apply.
package replicate

// BasePath is the URL prefix every replication endpoint sits under. Kept as a
// constant so client and server agree byte-for-byte.
const BasePath = "/v0"

// CapabilitiesHeader is the /v0/refs response header listing extensions.
const CapabilitiesHeader = "X-Zonegit-Capabilities"

// ObjectKindHeader carries an object's kind on GET /v0/objects/<hex>.
const ObjectKindHeader = "X-Object-Kind"

// Extension names announced in CapabilitiesHeader.
const (
	CapBatch = "batch"
	CapTags  = "tags"
)

// Branch identifies one (zone, name) pair plus the commit hash it points
// at. Exchanged in the /v0/refs response so the secondary can compute which
// branches have diverged. Tags use the same shape.
type Branch struct {
	Zone string `json:"zone"`
	Name string `json:"name"`
	Hash string `json:"hash"` // hex-encoded
}

// RefsResponse is the body returned by GET /v0/refs. Tags is our extension
// ("tags" capability); it is omitted for v0 peers.
type RefsResponse struct {
	Zones    []string `json:"zones"`
	Branches []Branch `json:"branches"`
	Tags     []Branch `json:"tags,omitempty"`
}

// WalkRequest is the body POSTed to /v0/objects/walk.
//
// Roots are the object hashes the secondary wants to reach (typically the
// primary's branch tips after diffing /v0/refs). Known are object hashes the
// secondary already has, with their complete closures.
type WalkRequest struct {
	Roots []string `json:"roots"` // hex
	Known []string `json:"known"` // hex
}

// WalkResponse is the body returned by /v0/objects/walk. Hashes are in
// arbitrary order and may be a superset of what the client lacks.
type WalkResponse struct {
	Missing []string `json:"missing"` // hex
}

// BatchRequest is the body POSTed to /v0/objects/batch ("batch" extension).
// The response streams each object framed as "<hex> <kind> <len>\n<payload>".
type BatchRequest struct {
	Hashes []string `json:"hashes"`
}
