package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// The object stream of batch and pack responses (see BatchRequest): frames
// of "<64 lowercase hex> SP <kind> SP <decimal length> LF <payload>", back
// to back, then the ObjectCountTrailer trailer.

// FrameWriter writes the object stream.
type FrameWriter struct {
	bw *bufio.Writer
	n  int
	// hdr is the header buffer, kept: a local one escapes (to bufio's
	// Write), one allocation per frame.
	hdr [64 + 1 + 8 + 1 + 20 + 1]byte
}

// NewFrameWriter buffers frames for w; Flush sends what is buffered.
func NewFrameWriter(w io.Writer) *FrameWriter {
	return &FrameWriter{bw: bufio.NewWriterSize(w, 256<<10)}
}

// Frame writes one object. Errors name the object.
func (f *FrameWriter) Frame(h repo.Hash, kind repo.Kind, payload []byte) error {
	b := hex.AppendEncode(f.hdr[:0], h[:])
	b = append(b, ' ')
	b = append(b, kind...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, '\n')
	if _, err := f.bw.Write(b); err != nil {
		return fmt.Errorf("send object %s: %w", h.Short(), err)
	}
	if _, err := f.bw.Write(payload); err != nil {
		return fmt.Errorf("send object %s: %w", h.Short(), err)
	}
	f.n++
	return nil
}

// Frames is the number of frames written so far: the value of the
// ObjectCountTrailer trailer once the stream is complete.
func (f *FrameWriter) Frames() int { return f.n }

// Flush sends the buffered frames.
func (f *FrameWriter) Flush() error {
	if err := f.bw.Flush(); err != nil {
		return fmt.Errorf("send objects: %w", err)
	}
	return nil
}

// maxFrameHeader bounds a frame header: 64 hex + kind + length.
const maxFrameHeader = 128

// maxRetainedFrame is the largest payload buffer a frame reader keeps
// between frames.
const maxRetainedFrame = 1 << 20

// FrameReader parses the object stream.
type FrameReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

// NewFrameReader reads frames from r; a frame whose payload is longer than
// maxObject bytes is an error.
func NewFrameReader(r io.Reader, maxObject int) *FrameReader {
	return &FrameReader{br: bufio.NewReaderSize(r, 256<<10), max: maxObject}
}

// Next returns the next frame. The payload is only valid until the next
// call. io.EOF means the stream ended cleanly between frames; a stream that
// ends inside a frame is io.ErrUnexpectedEOF. The hash is not checked
// against the payload: the caller verifies every object.
func (f *FrameReader) Next() (repo.Hash, repo.Kind, []byte, error) {
	return f.NextFunc(0, nil)
}

// NextFunc is Next for a caller that reads large payloads itself: when
// take is set and the next frame's payload is at least large bytes, take
// is called with the frame's header and a reader of exactly its n payload
// bytes, instead of reading them into the reader's buffer, and NextFunc
// returns a nil payload. A receiver can so read an object straight into
// the memory that keeps it, hashing it as it arrives, rather than copying
// it once more (a flat zone's apex tree is 4 MB per 100,000 names). take
// must read all n bytes unless it fails; its error is returned as is, and
// a payload it left unread is an error too, as the stream cannot go on.
func (f *FrameReader) NextFunc(large int, take func(h repo.Hash, kind repo.Kind, n int, r io.Reader) error) (repo.Hash, repo.Kind, []byte, error) {
	h, kind, n, err := f.header()
	if err != nil {
		return h, kind, nil, err
	}
	if take != nil && n >= large {
		lr := io.LimitedReader{R: f.br, N: int64(n)}
		if err := take(h, kind, n, &truncReader{r: &lr, h: h}); err != nil {
			return h, kind, nil, err
		}
		if lr.N != 0 {
			return h, kind, nil, fmt.Errorf("batch frame for %s: %d of its %d payload bytes left unread", h.Short(), lr.N, n)
		}
		return h, kind, nil, nil
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
		return h, "", nil, truncated(h, err)
	}
	return h, kind, f.buf, nil
}

// truncated is the error of a stream that ended, or failed, inside the
// payload of h.
func truncated(h repo.Hash, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("batch stream truncated in the payload of %s: %w", h.Short(), err)
}

// truncReader is the payload reader NextFunc lends: an end before the
// payload's last byte is the stream's truncation, named as Next names it.
type truncReader struct {
	r *io.LimitedReader
	h repo.Hash
}

func (t *truncReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && (err != io.EOF || t.r.N > 0) {
		return n, truncated(t.h, err)
	}
	return n, err
}

// header reads and parses the next frame header: the object's hash, kind
// and payload length.
func (f *FrameReader) header() (repo.Hash, repo.Kind, int, error) {
	var h repo.Hash
	line, err := f.br.ReadSlice('\n')
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) && len(line) == 0:
			return h, "", 0, io.EOF
		case errors.Is(err, io.EOF):
			return h, "", 0, fmt.Errorf("batch stream truncated in a frame header: %w", io.ErrUnexpectedEOF)
		case errors.Is(err, bufio.ErrBufferFull):
			return h, "", 0, fmt.Errorf("batch frame header longer than %d bytes", maxFrameHeader)
		}
		return h, "", 0, fmt.Errorf("batch stream: %w", err)
	}
	if len(line) > maxFrameHeader {
		return h, "", 0, fmt.Errorf("batch frame header longer than %d bytes", maxFrameHeader)
	}
	line = line[:len(line)-1]
	hexPart, rest, ok1 := bytes.Cut(line, []byte{' '})
	kindPart, lenPart, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return h, "", 0, fmt.Errorf("batch frame header %q: want \"<hex> <kind> <len>\"", Printable(line))
	}
	// Parsed from the bytes in place: a string made of each part for
	// repo.ParseHash and repo.ParseKind was two or three allocations per
	// frame (six million in a 1M-record pull). The errors are theirs.
	if len(hexPart) != len(h)*2 || hexDecode(h[:], hexPart) != nil {
		_, err := repo.ParseHash(string(hexPart))
		return h, "", 0, fmt.Errorf("batch frame header: %w", err)
	}
	kind := kindOf(kindPart)
	if kind == "" {
		_, err := repo.ParseKind(string(kindPart))
		return h, "", 0, fmt.Errorf("batch frame for %s: %w", h.Short(), err)
	}
	n, err := parseLen(lenPart)
	if err != nil || n > f.max {
		return h, "", 0, fmt.Errorf("batch frame for %s: bad length %q (at most %d)", h.Short(), Printable(lenPart), f.max)
	}
	return h, kind, n, nil
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

// hexDecode decodes src into dst (len(src) == 2*len(dst)).
func hexDecode(dst, src []byte) error {
	_, err := hex.Decode(dst, src)
	return err
}

// kindOf returns the kind b names ("" for none), as repo.ParseKind does.
func kindOf(b []byte) repo.Kind {
	for c := uint8(1); ; c++ {
		k := repo.KindOfCode(c)
		if k == "" {
			return ""
		}
		if string(b) == string(k) {
			return k
		}
	}
}
