package replicate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// errTooLarge marks a response that exceeded its size bound.
var errTooLarge = errors.New("response too large")

// limitedReader fails (instead of silently stopping like io.LimitReader)
// once more than n bytes have been read, so an oversized response is an
// error and never a quietly truncated decode.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe for one more byte: only data beyond the bound is an error.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// decodeRefs decodes a /v0/refs body (at most maxRefsBytes). Names and
// hashes are validated per branch by Plan, so one hostile entry does not
// make every branch fail.
func decodeRefs(r io.Reader) (*RefsResponse, error) {
	body, err := io.ReadAll(&limitedReader{r: r, n: maxRefsBytes})
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("refs response larger than %d MiB", maxRefsBytes>>20)
		}
		return nil, fmt.Errorf("reading refs response: %w", err)
	}
	var out RefsResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decoding refs response: %w", err)
	}
	return &out, nil
}

// maxWalkHashes bounds the hashes a client holds from walk answers in one
// pull: the most our server lists in one answer (its response cap), ~320
// MiB of hashes. An answer that goes on beyond it is refused. A variable
// only so a test can lower it.
var maxWalkHashes = defaultMaxWalkMissing

// maxWalkToken bounds one JSON token or skipped value of a walk answer. A
// hash is 66 bytes; an unknown field's value is read whole to skip it, so
// without a bound one endless string would be held in memory whole.
const maxWalkToken = 1 << 20

// errTokenTooLarge marks a JSON value beyond maxWalkToken.
var errTokenTooLarge = fmt.Errorf("a single JSON value is larger than %d KiB", maxWalkToken>>10)

// windowReader feeds a json.Decoder and fails once the decoder holds more
// than window bytes it has not consumed: the decoder buffers the whole
// token or value it is reading, so this bounds its memory by the largest
// value rather than by the body.
type windowReader struct {
	r      io.Reader
	dec    *json.Decoder
	read   int64
	window int64
}

func (w *windowReader) Read(p []byte) (int, error) {
	// InputOffset is where the decoder's unconsumed data starts; what it
	// read beyond that is the value in progress.
	if w.read-w.dec.InputOffset() > w.window {
		return 0, errTokenTooLarge
	}
	n, err := w.r.Read(p)
	w.read += int64(n)
	return n, err
}

// decodeWalk streams a /v0/objects/walk body, calling fn for each missing
// hash, so a walk of millions of hashes never sits in memory as JSON or as
// strings. "missing" may be null or []; unknown fields are ignored (each at
// most maxWalkToken); any hash that is not 64 hex characters fails the
// whole response, and so does an error from fn.
func decodeWalk(r io.Reader, fn func(repo.Hash) error) error {
	wr := &windowReader{r: &limitedReader{r: r, n: maxWalkBytes}, window: maxWalkToken}
	dec := json.NewDecoder(wr)
	wr.dec = dec
	wrap := func(err error) error {
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("walk response larger than %d MiB", maxWalkBytes>>20)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("decoding walk response: %w", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return wrap(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return wrap(fmt.Errorf("want a JSON object, got %v", tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return wrap(err)
		}
		key, _ := tok.(string)
		if key != "missing" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return wrap(err)
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return wrap(err)
		}
		if tok == nil {
			continue // "missing": null
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return wrap(fmt.Errorf(`"missing" must be an array, got %v`, tok))
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return wrap(err)
			}
			s, ok := tok.(string)
			if !ok {
				return wrap(fmt.Errorf(`"missing" holds %v, want hash strings`, tok))
			}
			h, err := repo.ParseHash(s)
			if err != nil {
				return wrap(err)
			}
			if err := fn(h); err != nil {
				return wrap(err)
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return wrap(err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return wrap(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("trailing data after the JSON object")
		}
		return wrap(err)
	}
	return nil
}

// maxFrameHeader bounds a batch frame header: 64 hex + kind + length.
const maxFrameHeader = 128

// maxRetainedFrame is the largest payload buffer a frame reader keeps
// between frames.
const maxRetainedFrame = 1 << 20

// frameReader parses the "batch" stream: frames of
// "<hex> <kind> <decimal-len>\n<payload>", back to back, ended by EOF.
type frameReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newFrameReader(r io.Reader, maxObject int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 256<<10), max: maxObject}
}

// next returns the next frame. The payload is only valid until the next
// call. io.EOF means the stream ended cleanly between frames; a stream that
// ends inside a frame is io.ErrUnexpectedEOF.
func (f *frameReader) next() (repo.Hash, repo.Kind, []byte, error) {
	var h repo.Hash
	line, err := f.br.ReadSlice('\n')
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) && len(line) == 0:
			return h, "", nil, io.EOF
		case errors.Is(err, io.EOF):
			return h, "", nil, fmt.Errorf("batch stream truncated in a frame header: %w", io.ErrUnexpectedEOF)
		case errors.Is(err, bufio.ErrBufferFull):
			return h, "", nil, fmt.Errorf("batch frame header longer than %d bytes", maxFrameHeader)
		}
		return h, "", nil, fmt.Errorf("batch stream: %w", err)
	}
	if len(line) > maxFrameHeader {
		return h, "", nil, fmt.Errorf("batch frame header longer than %d bytes", maxFrameHeader)
	}
	line = line[:len(line)-1]
	hexPart, rest, ok1 := bytes.Cut(line, []byte{' '})
	kindPart, lenPart, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return h, "", nil, fmt.Errorf("batch frame header %q: want \"<hex> <kind> <len>\"", printable(line))
	}
	h, err = repo.ParseHash(string(hexPart))
	if err != nil {
		return h, "", nil, fmt.Errorf("batch frame header: %w", err)
	}
	kind, err := repo.ParseKind(string(kindPart))
	if err != nil {
		return h, "", nil, fmt.Errorf("batch frame for %s: %w", h.Short(), err)
	}
	n, err := parseLen(lenPart)
	if err != nil || n > f.max {
		return h, "", nil, fmt.Errorf("batch frame for %s: bad length %q (at most %d)", h.Short(), printable(lenPart), f.max)
	}
	switch {
	case cap(f.buf) < n:
		f.buf = make([]byte, n, max(n, 2*cap(f.buf)))
	case cap(f.buf) > maxRetainedFrame && n <= maxRetainedFrame:
		// Do not keep the buffer of one huge object (the apex tree of a
		// million-name zone is ~40 MB) for the rest of a long stream.
		f.buf = make([]byte, n, maxRetainedFrame)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.br, f.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, "", nil, fmt.Errorf("batch stream truncated in the payload of %s: %w", h.Short(), err)
	}
	return h, kind, f.buf, nil
}

// parseLen accepts only plain decimal digits (no sign, no spaces, no
// leading zero), so each frame has one spelling.
func parseLen(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 10 || len(b) > 1 && b[0] == '0' {
		return 0, errors.New("bad length")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("bad length")
		}
	}
	n, err := strconv.Atoi(string(b))
	return n, err
}
