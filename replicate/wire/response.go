package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// Bounds on what a client decodes from a primary's answers. Walk answers
// are decoded as a stream (one hash at a time), so their bound limits work,
// not memory: a full walk of a 1M-RRset zone is about 2M hashes (~140 MB).
const (
	maxRefsBytes = 64 << 20
	maxWalkBytes = 1 << 30
)

// ErrTooLarge marks a body that exceeded its size bound.
var ErrTooLarge = errors.New("response too large")

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
			return 0, ErrTooLarge
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

// EncodeRefs is the /v0/refs body, byte for byte the daemon's: the JSON of
// resp and a newline.
func EncodeRefs(resp *RefsResponse) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		return nil, fmt.Errorf("encode refs: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeRefs decodes a /v0/refs body (at most 64 MiB). Names and hashes
// are not checked here: the client validates them per branch, so one
// hostile entry does not make every branch fail.
func DecodeRefs(r io.Reader) (*RefsResponse, error) {
	body, err := io.ReadAll(&limitedReader{r: r, n: maxRefsBytes})
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
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

// DecodeMissing streams a walk answer (WalkResponse, at most 1 GiB),
// calling fn for each missing hash, so a walk of millions of hashes never
// sits in memory as JSON or as strings. "missing" may be null or [];
// unknown fields are ignored (each at most 1 MiB); any hash that is not 64
// hex characters fails the whole response, and so does an error from fn.
func DecodeMissing(r io.Reader, fn func(repo.Hash) error) error {
	wr := &windowReader{r: &limitedReader{r: r, n: maxWalkBytes}, window: maxWalkToken}
	dec := json.NewDecoder(wr)
	wr.dec = dec
	wrap := func(err error) error {
		if errors.Is(err, ErrTooLarge) {
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

// WriteMissing writes a walk answer, {"missing":["<hex>",...]} and a
// newline, as the daemon does, through a buffer, and returns the first
// write error.
func WriteMissing(w io.Writer, missing []repo.Hash) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(`{"missing":[`); err != nil {
		return err
	}
	var buf [66]byte
	for i, h := range missing {
		b := buf[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = hex.AppendEncode(b, h[:])
		b = append(b, '"')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if _, err := bw.WriteString("]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}
