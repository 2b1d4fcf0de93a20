// Package server is the primary's side of replication: HTTP handlers that
// serve a repository to secondaries (Server), the bounds that keep a
// primary's memory in check whatever the number of secondaries, and the
// read-only snapshots of a directory another process writes (Snapshotter).
// It speaks the protocol through package wire and answers walks with
// package walk; it never calls the client (package replicate), which
// reaches it only through type aliases.
package server

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Server exposes a zonegit repo to secondaries over HTTP. Every request
// reads the current snapshot; correctness comes from content-addressed
// object bodies, not from session state. Server never writes.
//
// With V0Only the server is indistinguishable from a plain zonegit v0
// daemon: same routes, status codes, Content-Types and refs body bytes.
// Otherwise it also serves the extensions of DESIGN §4.2 (see
// wire.BatchRequest and wire.WalkRequest for their exact wire behaviour).
//
// Where the repository comes from, one of two ways:
//   - SnapshotFn, for a repository this process has open (and may write):
//     every request reads the *repo.Repo it returns.
//   - Snapshots, for a directory another process writes (the
//     zonegit-replicate serve command): a Snapshotter hands out read-only
//     copies and replaces them as the directory changes.
type Server struct {
	// SnapshotFn returns the repository to serve for one request, so
	// secondaries see the latest commits. The server does not close it.
	// Ignored when Snapshots is set.
	SnapshotFn func() (*repo.Repo, error)

	// Snapshots, when set, hands out a handle per request and is told when
	// the request is done with it (a *Snapshotter in production), so
	// handles can be replaced while requests are in flight.
	Snapshots SnapshotSource

	// V0Only disables every extension: the server then behaves exactly as a
	// plain zonegit v0 daemon (no capabilities header, no tags, no batch,
	// no pack, no cache headers).
	V0Only bool
	// Token, when set, requires "Authorization: Bearer <token>" on every
	// request (compared in constant time); others get 401.
	Token string

	// Limits; zero values take the defaults noted.
	MaxBodyBytes    int64 // request body cap for walk, pack and batch; default 8 MiB
	MaxWalkHashes   int   // roots+known per walk or pack; default 100,000
	MaxBatchHashes  int   // hashes per batch; default 50,000
	MaxKnownCommits int   // see walk.Options; default 100,000
	// MaxWalkMissing caps the hashes one walk response lists (memory and
	// response size); a walk that would list more gets 413 and should be
	// split by roots, or use pack, which streams. Default 10,000,000.
	MaxWalkMissing int
	// MaxBatchResponseBytes caps the payload bytes of one batch response.
	// A response is also capped relative to its request (256 bytes per
	// request byte, at least 16 MiB), so a small request cannot start a
	// huge transfer; a capped response ends early, after a whole frame,
	// and the client asks again for the rest (see BatchRequest). Default
	// 256 MiB.
	MaxBatchResponseBytes int64

	// Expensive requests (walk, pack and batch: they read and hold a
	// part of the store's objects in memory) are served at most
	// MaxConcurrent at a time (default 4); up to MaxQueued more wait for a
	// slot (default 64; negative: none), each at most QueueWait (default
	// 10s). Any other gets 503 with a Retry-After, which clients honour.
	// This bounds the server's memory whatever the number of secondaries;
	// cheap requests (refs, single objects) are not queued.
	MaxConcurrent int
	MaxQueued     int
	QueueWait     time.Duration

	// CacheBytes bounds the memory kept for large objects (256 KiB and
	// more: the apex trees of flat zones) that walks read repeatedly when
	// many secondaries pull the same change; a walk leaves out those the
	// store lends in place (repo.LentInPlace), GETs keep them too. Default
	// 128 MiB; negative disables the cache.
	CacheBytes int64

	// Banner is the text served on paths the server does not route (the
	// zonegit daemon answers those with 200 and a banner, and so do we).
	Banner string

	// Logger, when set, gets one line per failed request (4xx at Debug,
	// 5xx at Error) and per walk (Debug). Nothing secret is logged.
	Logger wire.Logger

	// Stats, when set, counts requests and work (zonegit-replicate serve
	// reports them when it stops).
	Stats *ServerStats

	cacheOnce sync.Once
	cache     *bigObjectCache

	gateOnce sync.Once
	gate     *gate
}

// reader wraps a snapshot reader with the large-object cache.
func (s *Server) reader(rd repo.Reader) repo.Reader {
	s.cacheOnce.Do(func() {
		budget := s.CacheBytes
		if budget == 0 {
			budget = 128 << 20
		}
		s.cache = newBigObjectCache(budget, 256<<10)
	})
	if s.cache.disabled {
		return rd
	}
	return &cachedReader{Reader: rd, c: s.cache}
}

// SnapshotSource hands out repository handles. release must be called when
// the request no longer uses the handle.
type SnapshotSource interface {
	Acquire() (r *repo.Repo, release func(), err error)
}

// ServerStats are counters a Server updates atomically.
type ServerStats struct {
	Requests      atomic.Int64 // every request that reached a handler
	ClientErrors  atomic.Int64 // 4xx responses
	ServerErrors  atomic.Int64 // 5xx responses
	Walks         atomic.Int64 // walk and pack requests answered
	WalkVisited   atomic.Int64 // objects read by walks (walk.Stats.Visited)
	WalkMissing   atomic.Int64 // objects reported by walks
	ObjectsServed atomic.Int64 // objects sent (GET, batch, pack)
	BytesServed   atomic.Int64 // payload bytes sent
	Busy          atomic.Int64 // expensive requests refused with 503 (queue full or wait over)
	Queued        atomic.Int64 // expensive requests that had to wait for a slot
	PeakRunning   atomic.Int64 // most expensive requests served at once
	BatchCapped   atomic.Int64 // batch responses ended early at their size cap
}

const (
	defaultMaxBodyBytes   = 8 << 20
	defaultMaxWalkHashes  = 100000
	defaultMaxBatchHashes = 50000
	defaultMaxWalkMissing = wire.DefaultMaxWalkMissing
	defaultBanner         = "zonegit-replicate — replication endpoints under /v0\n"
	immutableCache        = "public, max-age=31536000, immutable"
)

// Defaults of the bounds on expensive requests and batch responses.
const (
	defaultMaxBatchBytes = 256 << 20
	defaultMaxConcurrent = 4
	defaultMaxQueued     = 64
	defaultQueueWait     = 10 * time.Second
	// A batch response may carry this many bytes per request byte (but
	// always batchFloorBytes, so one large object fits): a chunk of our
	// client's hashes is about 1.1 MB of request.
	batchAmplification = 256
	batchFloorBytes    = 16 << 20
)

// orDefault returns limit when it is set (positive), else def.
func orDefault[T ~int | ~int64](limit, def T) T {
	if limit > 0 {
		return limit
	}
	return def
}

// capabilities is the list announced in wire.CapabilitiesHeader ("" when
// V0Only).
func (s *Server) capabilities() string {
	if s.V0Only {
		return ""
	}
	return strings.Join([]string{wire.CapBatch, wire.CapTags, wire.CapPack}, ", ")
}

// RegisterHandlers wires the protocol endpoints onto mux under wire.BasePath,
// including the banner for unrouted paths below wire.BasePath. Callers can mount
// the same server alongside their existing /metrics endpoint by passing
// http.DefaultServeMux or any sub-mux.
func (s *Server) RegisterHandlers(mux *http.ServeMux) {
	mux.Handle(wire.RefsPath, s.wrap(http.MethodGet, s.handleRefs))
	mux.Handle(wire.WalkPath, s.wrap(http.MethodPost, s.gated(s.handleWalk)))
	mux.Handle(wire.ObjectPath, s.wrap(http.MethodGet, s.handleObject))
	if !s.V0Only {
		// In v0-only mode these paths fall through to /v0/objects/ and get
		// the daemon's "GET only" 405, as a v0 client would expect.
		mux.Handle(wire.BatchPath, s.wrap(http.MethodPost, s.gated(s.handleBatch)))
		mux.Handle(wire.PackPath, s.wrap(http.MethodPost, s.gated(s.handlePack)))
	}
	mux.Handle(wire.BasePath+"/", s.wrap(anyMethod, s.handleBanner))
}

// Handler returns a complete handler: the protocol endpoints and the banner
// on every other path, as the zonegit daemon serves them.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.RegisterHandlers(mux)
	mux.Handle("/", s.wrap(anyMethod, s.handleBanner))
	return mux
}

// NewHTTPServer returns an http.Server for h with timeouts that keep slow
// or stalled clients from holding connections: headers within 10 s, a
// request body within 1 min, a response within 15 min (a full pack of a
// million-record zone takes well under that on a LAN; a stalled reader is
// cut off), idle keep-alive connections closed after 2 min.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      15 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// statusWriter records the status for stats and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// anyMethod is wrap's method for endpoints that answer every method.
const anyMethod = ""

// wrap adds what every endpoint does before its handler runs: counting,
// the bearer token check (401), then the method check, whose 405 "GET
// only" / "POST only" is the daemon's.
func (s *Server) wrap(method string, h func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: rw}
		if s.Stats != nil {
			s.Stats.Requests.Add(1)
			defer func() {
				switch {
				case sw.status >= 500:
					s.Stats.ServerErrors.Add(1)
				case sw.status >= 400:
					s.Stats.ClientErrors.Add(1)
				}
			}()
		}
		if s.Token != "" && !s.authorized(r) {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="zonegit"`)
			s.fail(sw, r, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if method != anyMethod && r.Method != method {
			s.fail(sw, r, http.StatusMethodNotAllowed, method+" only")
			return
		}
		h(sw, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(auth[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) == 1
}

// fail writes a plain-text error like the daemon (http.Error) and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if s.Logger != nil {
		if code >= 500 {
			s.Logger.Error("replicate server: request failed", "method", r.Method, "path", clipPath(r.URL.Path), "status", code, "error", msg)
		} else {
			s.Logger.Debug("replicate server: request refused", "method", r.Method, "path", clipPath(r.URL.Path), "status", code, "error", msg)
		}
	}
	http.Error(w, msg, code)
}

// sendFailed notes a response body that could not be written. The status
// is already sent, so there is nobody left to tell but the log: this is
// usually a client that went away, hence Debug.
func (s *Server) sendFailed(r *http.Request, err error) {
	if s.Logger != nil {
		s.Logger.Debug("replicate server: response not sent", "method", r.Method, "path", clipPath(r.URL.Path), "error", err.Error())
	}
}

func clipPath(p string) string {
	if len(p) > 100 {
		return p[:100] + "…"
	}
	return p
}

// snapshot returns the repository for one request and its release. When
// there is none it has answered, and ok is false: 503 when the source says
// to try again later (a writer holds the directory), 500 otherwise.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) (rp *repo.Repo, release func(), ok bool) {
	rp, release, err := s.acquire()
	switch {
	case err == nil:
		return rp, release, true
	case errors.Is(err, ErrSnapshotUnavailable):
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
	default:
		s.fail(w, r, http.StatusInternalServerError, "open repository: "+err.Error())
	}
	return nil, nil, false
}

func (s *Server) acquire() (*repo.Repo, func(), error) {
	if s.Snapshots != nil {
		return s.Snapshots.Acquire()
	}
	if s.SnapshotFn == nil {
		return nil, nil, errors.New("server has no repository (SnapshotFn and Snapshots are nil)")
	}
	r, err := s.SnapshotFn()
	return r, func() {}, err
}
