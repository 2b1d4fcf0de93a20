package repo

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// cursorRepo writes n blobs, closes the writer (its memtable becomes a
// table, so the key count is known) and opens the directory read-only, as
// serve does. It returns the blobs' hashes, sorted, and hashes that are
// not stored.
func cursorRepo(t *testing.T, n int) (*Repo, []Hash, []Hash) {
	t.Helper()
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	var stored, absent []Hash
	for i := range 2 * n {
		p := []byte(fmt.Sprintf("object %d", i))
		if i%2 == 1 {
			absent = append(absent, HashObject(KindBlob, p))
			continue
		}
		h, err := b.PutObject(KindBlob, p)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, h)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cmp := func(a, b Hash) int { return bytes.Compare(a[:], b[:]) }
	slices.SortFunc(stored, cmp)
	slices.SortFunc(absent, cmp)
	return r, stored, absent
}

// TestViewCursorReads reads a store through View in the orders a walk and
// a pack response read it (ascending runs, dense and sparse, interleaved,
// with absent hashes among them, then descending) and checks every answer
// against a point lookup outside View, and that cursors served the
// ascending reads.
func TestViewCursorReads(t *testing.T) {
	r, stored, absent := cursorRepo(t, 3000)
	payload := map[Hash][]byte{}
	for _, h := range stored {
		_, p, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		payload[h] = p
	}
	// Dense ascending (every stored object, absent ones in between),
	// sparse ascending (every 10th), two ascending runs interleaved, and
	// descending.
	var sparse, interleaved []Hash
	dense := slices.SortedFunc(slices.Values(slices.Concat(stored, absent)), func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	for i, h := range stored {
		if i%10 == 0 {
			sparse = append(sparse, h)
		}
	}
	// Runs of 50 from each half in turn, as a pack response reads a run
	// of trees, then a run of blobs, then trees again.
	half := len(stored) / 2
	for i := 0; i < half; i += 50 {
		interleaved = append(interleaved, stored[i:min(i+50, half)]...)
		interleaved = append(interleaved, stored[half+i:min(half+i+50, len(stored))]...)
	}
	descending := slices.Clone(dense)
	slices.Reverse(descending)
	for _, c := range []struct {
		name    string
		order   []Hash
		cursors bool
	}{{"dense", dense, true}, {"sparse", sparse, true}, {"interleaved", interleaved, true}, {"descending", descending, false}} {
		t.Run(c.name, func(t *testing.T) {
			for _, read := range []string{"Get", "Peek", "Has"} {
				var used bool
				err := r.View(func(rd Reader) error {
					for _, h := range c.order {
						want, ok := payload[h]
						var got []byte
						var err error
						found := true
						switch read {
						case "Get":
							var kind Kind
							kind, got, err = rd.Get(h)
							if err == nil && kind != KindBlob {
								return fmt.Errorf("%s: kind %s", h.Short(), kind)
							}
						case "Peek":
							err = Peek(rd, h, func(_ Kind, p []byte) error {
								got = bytes.Clone(p)
								return nil
							})
						case "Has":
							found, err = rd.Has(h)
							got = want
						}
						if errors.Is(err, ErrNotFound) {
							found, err = false, nil
						}
						if err != nil {
							return err
						}
						if found != ok || !bytes.Equal(got, want) {
							return fmt.Errorf("%s %s: found %v %q, want %v %q", read, h.Short(), found, got, ok, want)
						}
					}
					used = rd.(txnView).seq.curs[0].it != nil
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if used != c.cursors {
					t.Errorf("%s: cursors used: %v, want %v", read, used, c.cursors)
				}
			}
		})
	}
}

// TestViewCursorLentPayload: a payload lent by Peek stays intact while the
// callback reads further objects in ascending order (a walk compares a
// tree with its bases that way).
func TestViewCursorLentPayload(t *testing.T) {
	r, stored, _ := cursorRepo(t, 2000)
	err := r.View(func(rd Reader) error {
		for i := 0; i+3 < len(stored); i += 4 {
			err := Peek(rd, stored[i], func(_ Kind, outer []byte) error {
				before := bytes.Clone(outer)
				for _, h := range stored[i+1 : i+4] {
					if err := Peek(rd, h, func(Kind, []byte) error { return nil }); err != nil {
						return err
					}
				}
				if !bytes.Equal(outer, before) {
					return fmt.Errorf("payload of %s changed under a nested read: %q, was %q", stored[i].Short(), outer, before)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestViewWriterNoCursors: a writer's View reads by point lookups only
// (an iterator would hold the memtables and tables the writer replaces
// while it is open), and reads what its memtable and tables hold.
func TestViewWriterNoCursors(t *testing.T) {
	dir := t.TempDir()
	var all []Hash
	payload := map[Hash][]byte{}
	put := func(r *Repo, from, to int) {
		t.Helper()
		b, err := r.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			p := []byte(fmt.Sprintf("object %d", i))
			h, err := b.PutObject(KindBlob, p)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, h)
			payload[h] = p
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(w, 0, 2000) // a table once closed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	put(w, 2000, 4000) // in the memtable
	slices.SortFunc(all, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	err = w.View(func(rd Reader) error {
		if rd.(txnView).seq != nil {
			return errors.New("a writer's View has cursors")
		}
		for _, h := range all {
			_, p, err := rd.Get(h)
			if err != nil {
				return err
			}
			if !bytes.Equal(p, payload[h]) {
				return fmt.Errorf("%s: %q, want %q", h.Short(), p, payload[h])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestViewCursorReadsUnderLentPayload: reads made while one payload is
// lent (a pack response reads a sorted blob batch inside the walk's Peek
// of a tree) step a cursor set of their own, answer what point lookups
// answer, and leave the lent payload and the outer sequence's cursor where
// they were; reads two Peeks deep are point lookups.
func TestViewCursorReadsUnderLentPayload(t *testing.T) {
	r, stored, absent := cursorRepo(t, 3000)
	payload := map[Hash][]byte{}
	for _, h := range stored {
		_, p, err := r.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		payload[h] = p
	}
	batch := slices.SortedFunc(slices.Values(slices.Concat(stored[1:], absent)), func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	check := func(rd Reader, h Hash) error {
		want, ok := payload[h]
		kind, got, err := rd.Get(h)
		if errors.Is(err, ErrNotFound) && !ok {
			return nil
		}
		if err != nil || kind != KindBlob || !ok || !bytes.Equal(got, want) {
			return fmt.Errorf("Get %s: %s %q %v; want %v %q", h.Short(), kind, got, err, ok, want)
		}
		return nil
	}
	err := r.View(func(rd Reader) error {
		seq := rd.(txnView).seq
		// An outer ascending run starts the outer set's cursor.
		for _, h := range stored[:4] {
			if err := check(rd, h); err != nil {
				return err
			}
		}
		outer := stored[4]
		err := Peek(rd, outer, func(_ Kind, p []byte) error {
			before := bytes.Clone(p)
			at := slices.Clone(seq.curs[0].it.Item().Key())
			for i, h := range batch {
				if err := check(rd, h); err != nil {
					return err
				}
				if i%500 == 0 {
					// Two deep: a point lookup, the nested cursor stays.
					if err := Peek(rd, h, func(Kind, []byte) error {
						nat := slices.Clone(seq.nested.curs[0].it.Item().Key())
						for _, g := range batch[i+1 : min(i+20, len(batch))] {
							if err := check(rd, g); err != nil {
								return err
							}
						}
						if !bytes.Equal(seq.nested.curs[0].it.Item().Key(), nat) {
							return fmt.Errorf("a read two Peeks deep moved the nested cursor")
						}
						return nil
					}); err != nil && !errors.Is(err, ErrNotFound) {
						return err
					}
				}
			}
			if !bytes.Equal(p, before) {
				return fmt.Errorf("lent payload of %s changed: %q, was %q", outer.Short(), p, before)
			}
			if !bytes.Equal(seq.curs[0].it.Item().Key(), at) {
				return fmt.Errorf("reads under a lent payload moved the outer cursor")
			}
			if seq.nested == nil || seq.nested.curs[0].it == nil {
				return fmt.Errorf("the sorted run under a lent payload was not read through cursors")
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The outer run goes on from its cursor.
		for _, h := range stored[5:40] {
			if err := check(rd, h); err != nil {
				return err
			}
		}
		if seq.last != &seq.curs[0] || !seq.lastStepped {
			return fmt.Errorf("the outer run did not step its cursor after the lent payload")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
