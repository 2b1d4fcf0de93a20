package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zonegit/terraform-provider-zonegit/repo"
)

func clientFrame(kind repo.Kind, payload string) string {
	h := repo.HashObject(kind, []byte(payload))
	return h.String() + " " + string(kind) + " " + clientItoa(len(payload)) + "\n" + payload
}

func clientItoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func TestFrameReader(t *testing.T) {
	stream := clientFrame(repo.KindBlob, "abc") + clientFrame(repo.KindSymref, "refs/heads/x./main") + clientFrame(repo.KindBlob, "")
	fr := NewFrameReader(strings.NewReader(stream), 1<<20)
	var n int
	for {
		h, kind, payload, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if repo.HashObject(kind, payload) != h {
			t.Fatalf("frame %d does not verify", n)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d frames, want 3", n)
	}
	for name, bad := range map[string]string{
		"truncated payload": stream[:len(stream)-20],
		"truncated header":  clientFrame(repo.KindBlob, "x")[:30],
		"bad kind":          strings.Repeat("a", 64) + " blub 1\nx",
		"bad length":        strings.Repeat("a", 64) + " blob -1\n",
		"too long":          strings.Repeat("a", 64) + " blob 2000000\n",
		"short hash":        "abcd blob 1\nx",
		"no fields":         "hello\n",
	} {
		fr := NewFrameReader(strings.NewReader(bad), 1<<20)
		var err error
		for err == nil {
			_, _, _, err = fr.Next()
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzBatchFrames: the frame parser never panics, never returns a payload
// longer than the bound, and every frame it returns re-encodes to the bytes
// it consumed.
func FuzzBatchFrames(f *testing.F) {
	f.Add([]byte(clientFrame(repo.KindBlob, "abc") + clientFrame(repo.KindTree, "\x01\x00")))
	f.Add([]byte(strings.Repeat("a", 64) + " blob 3\nab"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data), 1024)
		var rebuilt []byte
		for {
			h, kind, payload, err := fr.Next()
			if err != nil {
				if errors.Is(err, io.EOF) && !bytes.Equal(rebuilt, data) && !bytes.EqualFold(rebuilt, data) {
					t.Fatalf("clean EOF but consumed %q of %q", rebuilt, data)
				}
				return
			}
			if len(payload) > 1024 {
				t.Fatalf("payload of %d bytes beyond the bound", len(payload))
			}
			rebuilt = append(rebuilt, h.String()+" "+string(kind)+" "+clientItoa(len(payload))+"\n"...)
			rebuilt = append(rebuilt, payload...)
		}
	})
}

// TestFrameWriterRoundTrip: what FrameWriter writes, FrameReader reads
// back frame for frame, and Frames counts them (the trailer's value).
func TestFrameWriterRoundTrip(t *testing.T) {
	objs := []struct {
		kind    repo.Kind
		payload string
	}{{repo.KindBlob, "abc"}, {repo.KindTree, "\x01\x00"}, {repo.KindBlob, ""}, {repo.KindSymref, "refs/heads/x./main"}}
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	for _, o := range objs {
		if err := fw.Frame(repo.HashObject(o.kind, []byte(o.payload)), o.kind, []byte(o.payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if fw.Frames() != len(objs) {
		t.Errorf("Frames() = %d, want %d", fw.Frames(), len(objs))
	}
	var want string
	for _, o := range objs {
		want += clientFrame(o.kind, o.payload)
	}
	if buf.String() != want {
		t.Fatalf("stream %q, want %q", buf.String(), want)
	}
	fr := NewFrameReader(&buf, 1<<10)
	for i, o := range objs {
		h, kind, payload, err := fr.Next()
		if err != nil || kind != o.kind || string(payload) != o.payload || h != repo.HashObject(o.kind, []byte(o.payload)) {
			t.Fatalf("frame %d: %s %s %q %v", i, h.Short(), kind, payload, err)
		}
	}
	if _, _, _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

// TestFrameReaderNextFunc: frames at least as large as the bound go to
// take, with a reader of exactly their payload, and the frames after them
// read as usual; smaller ones come back as Next returns them. A take that
// leaves bytes unread, a payload cut short, and take's own error end the
// stream with an error.
func TestFrameReaderNextFunc(t *testing.T) {
	large := strings.Repeat("x", 300<<10) // beyond the reader's buffer
	stream := clientFrame(repo.KindBlob, "abc") + clientFrame(repo.KindBlob, large) + clientFrame(repo.KindBlob, "de")
	var taken []string
	take := func(h repo.Hash, kind repo.Kind, n int, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(b) != n || repo.HashObject(kind, b) != h {
			t.Fatalf("take got %d bytes of a %d-byte payload, or not its own", len(b), n)
		}
		taken = append(taken, string(b))
		return nil
	}
	fr := NewFrameReader(strings.NewReader(stream), 1<<20)
	var small []string
	for {
		h, kind, payload, err := fr.NextFunc(1000, take)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if payload == nil {
			continue
		}
		if repo.HashObject(kind, payload) != h {
			t.Fatal("a small frame does not verify")
		}
		small = append(small, string(payload))
	}
	if len(taken) != 1 || taken[0] != large || len(small) != 2 || small[0] != "abc" || small[1] != "de" {
		t.Fatalf("taken %d, small %q", len(taken), small)
	}

	boom := errors.New("refused")
	for name, tc := range map[string]struct {
		stream string
		take   func(repo.Hash, repo.Kind, int, io.Reader) error
		want   error
	}{
		"left unread": {stream, func(_ repo.Hash, _ repo.Kind, _ int, r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, 10))
			return err
		}, nil},
		"cut short": {stream[:len(stream)/2], func(_ repo.Hash, _ repo.Kind, n int, r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, n))
			return err
		}, io.ErrUnexpectedEOF},
		"take fails": {stream, func(repo.Hash, repo.Kind, int, io.Reader) error { return boom }, boom},
	} {
		fr := NewFrameReader(strings.NewReader(tc.stream), 1<<20)
		var err error
		for err == nil {
			_, _, _, err = fr.NextFunc(1000, tc.take)
		}
		if errors.Is(err, io.EOF) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want an error (%v)", name, err, tc.want)
		}
	}
}
