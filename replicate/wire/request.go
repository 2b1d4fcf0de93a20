package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// DefaultMaxWalkMissing is the most hashes our server lists in one walk
// answer by default (~320 MiB of JSON); a walk that would list more gets
// 413. A client refuses an answer that goes on beyond it.
const DefaultMaxWalkMissing = 10000000

// errInvalidObject ends hash errors, as in the daemon's messages.
var errInvalidObject = errors.New("invalid object")

// ParseHash parses a hash a peer sent: 64 hex characters, either case (the
// daemon accepts uppercase too). Errors end in "invalid object", as the
// daemon's do.
func ParseHash(s string) (repo.Hash, error) {
	var h repo.Hash
	if len(s) != 64 {
		return h, fmt.Errorf("hash must be 64 hex chars, got %d: %w", len(s), errInvalidObject)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("decode hash %q: %w", s, errInvalidObject)
	}
	return h, nil
}

func parseHashes(field string, in []string) ([]repo.Hash, error) {
	out := make([]repo.Hash, 0, len(in))
	for _, s := range in {
		h, err := ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// TooLargeError is a request over the server's limits (HTTP 413, where
// other request errors are 400).
type TooLargeError struct{ msg string }

func (e *TooLargeError) Error() string { return e.msg }

func tooManyHashes(n, limit int) error {
	return &TooLargeError{fmt.Sprintf("%d hashes in one request, the limit is %d: split the request", n, limit)}
}

// decodeRequest reads one JSON value of at most maxBytes from body. body
// may be an http.MaxBytesReader of the same bound (the server's, so that
// net/http closes the connection of an oversized request).
func decodeRequest(body io.Reader, maxBytes int64, v any) error {
	err := json.NewDecoder(&limitedReader{r: body, n: maxBytes}).Decode(v)
	if err == nil {
		return nil
	}
	var tooBig *http.MaxBytesError
	if errors.Is(err, ErrTooLarge) || errors.As(err, &tooBig) {
		return &TooLargeError{fmt.Sprintf("request body exceeds %d bytes", maxBytes)}
	}
	return fmt.Errorf("decode: %w", err)
}

// ParseWalkRequest decodes and validates a walk (or pack) request body: at
// most maxBytes of JSON (unknown fields ignored, null lists accepted), at
// most maxHashes roots+known, every hash 64 hex characters. Errors are a
// *TooLargeError (413) or a 400 naming the field.
func ParseWalkRequest(body io.Reader, maxBytes int64, maxHashes int) (roots, known []repo.Hash, err error) {
	var req WalkRequest
	if err := decodeRequest(body, maxBytes, &req); err != nil {
		return nil, nil, err
	}
	if n := len(req.Roots) + len(req.Known); n > maxHashes {
		return nil, nil, tooManyHashes(n, maxHashes)
	}
	if roots, err = parseHashes("roots", req.Roots); err != nil {
		return nil, nil, err
	}
	if known, err = parseHashes("known", req.Known); err != nil {
		return nil, nil, err
	}
	return roots, known, nil
}

// ParseBatchRequest decodes and validates a batch request body with the
// rules of ParseWalkRequest.
func ParseBatchRequest(body io.Reader, maxBytes int64, maxHashes int) ([]repo.Hash, error) {
	var req BatchRequest
	if err := decodeRequest(body, maxBytes, &req); err != nil {
		return nil, err
	}
	if len(req.Hashes) > maxHashes {
		return nil, tooManyHashes(len(req.Hashes), maxHashes)
	}
	return parseHashes("hashes", req.Hashes)
}
