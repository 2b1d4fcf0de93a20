// Package wire is the replication protocol as bytes: the v0 contract of
// the zonegit daemon, our extensions, and the code that writes and reads
// them. Client (package replicate) and server (package replicate/server)
// both speak it through this package and nothing else, so a rule of the
// format lives in one place.
//
// The v0 protocol is a content-addressed Merkle walk over plain HTTP:
//
//	GET  /v0/refs              -> {"zones":[...],"branches":[{"zone","name","hash"}]}
//	POST /v0/objects/walk      -> {"missing":[hex]}
//	GET  /v0/objects/<hex>     -> payload, X-Object-Kind header
//
// Our server may announce optional extensions in X-Zonegit-Capabilities on
// /v0/refs ("batch": one streamed response for many objects; "tags": tags in
// the refs response; "pack": a walk and its objects in one stream). A client
// that does not see the header speaks plain v0, and a server with extensions
// disabled is a plain v0 daemon.
//
// What is here: the paths, headers and capability names; the JSON bodies
// (RefsResponse, WalkRequest, WalkResponse, BatchRequest) with their limits
// and error statuses; the object stream framing (FrameWriter, FrameReader);
// the streaming walk answer (WriteMissing, DecodeMissing); request parsing
// with the server's limits (ParseWalkRequest, ParseBatchRequest, ParseHash).
package wire

// BasePath is the URL prefix every replication endpoint sits under. Kept as a
// constant so client and server agree byte-for-byte.
const BasePath = "/v0"

// CapabilitiesHeader is the /v0/refs response header listing extensions.
const CapabilitiesHeader = "X-Zonegit-Capabilities"

// ObjectKindHeader carries an object's kind on GET /v0/objects/<hex>.
const ObjectKindHeader = "X-Object-Kind"

// The v0 endpoints.
const (
	// RefsPath answers GET with a RefsResponse.
	RefsPath = BasePath + "/refs"
	// WalkPath takes a WalkRequest and answers a WalkResponse.
	WalkPath = BasePath + "/objects/walk"
	// ObjectPath is the prefix of GET ObjectPath+"<hex>": one object's
	// payload, its kind in ObjectKindHeader.
	ObjectPath = BasePath + "/objects/"
)

// Extension names announced in CapabilitiesHeader.
const (
	CapBatch = "batch"
	CapTags  = "tags"
	// CapPack announces POST /v0/objects/pack: a walk and the transfer of
	// everything it finds in one round trip (see PackPath).
	CapPack = "pack"
)

// Extension endpoints (under BasePath) and their framing.
const (
	// BatchPath takes a BatchRequest and streams the objects it names.
	BatchPath = BasePath + "/objects/batch"
	// PackPath takes a WalkRequest and streams every object the walk finds
	// missing, in the same framing as BatchPath.
	PackPath = BasePath + "/objects/pack"
	// ObjectStreamContentType is the Content-Type of batch and pack
	// responses.
	ObjectStreamContentType = "application/vnd.zonegit.objects"
	// ObjectCountTrailer is an HTTP trailer sent after the last frame of a
	// batch or pack response with the number of frames (decimal). It is
	// absent when the server aborted the stream, so a client can tell a
	// complete stream from one cut at a frame boundary.
	ObjectCountTrailer = "X-Zonegit-Objects"
)

// Branch is one ref of the /v0/refs response: a (zone, name) pair and the
// hash it points at, so the secondary can compute which refs have diverged.
// The same type carries tags (RefsResponse.Tags, "tags" extension) because
// the wire spells both alike; for a tag, Name is the tag's name and Hash
// may name a tag object rather than a commit. Which list an entry came
// from is what tells a branch from a tag.
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

// WalkRequest is the body POSTed to /v0/objects/walk (and, with the "pack"
// extension, to /v0/objects/pack).
//
// Roots are the object hashes the secondary wants to reach (typically the
// primary's branch tips after diffing /v0/refs). Known are object hashes the
// secondary already has, with their complete closures.
//
// Errors: 400 bad JSON or hash ("roots: ..." / "known: ..."); 404 a root the
// primary does not have (the all-zero root is skipped; unknown known hashes
// are ignored); 413 body too large (default 8 MiB), too many hashes
// (default 100,000 roots+known), or (walk only) a result of more than the
// server's response cap (default 10,000,000 hashes: split the roots or use
// pack); 405 not POST; 500 the primary's own store is damaged.
//
// Pack ("pack" extension): the same request and the same errors before any
// frame; on success 200 with the BatchRequest framing, one frame per missing
// object, each object that is not a root after an object that links to it
// (a commit's tree and parents after the commit, a tree's entries after the
// tree; an object linked from several places is sent once, after the first
// of them, so it may precede a later one), and the ObjectCountTrailer
// trailer after the last frame. A failure after the first frame aborts the
// connection.
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
//
// Request: JSON {"hashes":[hex,...]}, hashes case-insensitive, at most the
// server's per-request limit (default 50,000) and body size limit.
//
// Errors, all sent before any frame (text/plain body saying why): 400 bad
// JSON or a bad hash; 404 when any hash is not in the primary (the body names
// the first one, "object <hex> not in primary"; nothing is streamed, so ask
// again without it); 413 body too large or too many hashes; 405 not POST;
// 401 missing or wrong token.
//
// Success: 200, Content-Type ObjectStreamContentType, then one frame per
// distinct requested hash, in request order (a hash asked twice is sent
// once, where it was first asked):
//
//	<64 lowercase hex> SP <kind> SP <decimal payload length> LF <payload bytes>
//
// with no separator between frames. After the last frame the server sends
// the ObjectCountTrailer trailer. The server may end the stream early, after
// a whole frame and with the trailer, when the response reaches its size
// cap (by default at least 16 MiB, 256 bytes per request byte, at most
// 256 MiB; the first frame is always sent): the trailer then counts fewer
// frames than hashes were asked, and the client asks again for the rest.
// If the server fails mid-stream (I/O
// error) it aborts the connection: the client sees a truncated body or a
// missing trailer, never a clean end. Clients must verify every object (hash
// and kind) as it arrives, as with single GETs.
type BatchRequest struct {
	Hashes []string `json:"hashes"`
}

// Logger receives leveled log lines with key/value pairs: the shape of
// go-retryablehttp's LeveledLogger, so tflog (or any such logger) plugs into
// client and server alike. It is here because both ends take one.
type Logger interface {
	Error(msg string, keysAndValues ...interface{})
	Info(msg string, keysAndValues ...interface{})
	Debug(msg string, keysAndValues ...interface{})
	Warn(msg string, keysAndValues ...interface{})
}
