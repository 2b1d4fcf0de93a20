package repo

import "bytes"

// DiffTree compares a new tree with trees already known, side by side over
// the raw payloads (a sorted merge, no allocation per entry), and calls fn
// for every entry of the new tree that no base holds identically (same
// kind, name and hash). It is the one comparison of a tree against known
// ones: the server's walk uses it to list what a client lacks, the client
// to predict what a pack stream will send and to check its closures.
//
// p is the new tree's payload, h its hash (named in errors). For a subtree
// reported, same lists the hashes the bases hold under the same name (other
// content), in base order and without repeats: the trees it is compared
// with next. For a leaf it is empty. same is reused by the next call.
//
// Every entry of p is decoded and checked (treeIter's rules), reported or
// not; a p that breaks a rule is an ErrCorrupt error after the entries
// before the bad one were reported. A base is compared with as far as it
// decodes: comparing with less reports more, never less. An error from fn
// stops the comparison and is returned as is.
func DiffTree(h Hash, p []byte, bases [][]byte, fn func(kind EntryKind, hash Hash, same []Hash) error) error {
	return diffTree(h, p, bases, fn, false)
}

// DiffValidTree is DiffTree for a new tree whose payload p is known to keep
// every rule: Validate (or a strict decode) accepted exactly these bytes.
// It reports the same entries, but steps over a run of entries identical to
// a base by their lengths instead of checking each again; a pull's client
// validated a tree it received before it compares it with the local tree
// it replaces, and in a flat zone's apex that run is the whole tree but one
// entry (100,000s of entries). On a p that breaks a rule inside such a run
// its reports are unspecified, so only a validated payload may be given.
func DiffValidTree(h Hash, p []byte, bases [][]byte, fn func(kind EntryKind, hash Hash, same []Hash) error) error {
	return diffTree(h, p, bases, fn, true)
}

func diffTree(h Hash, p []byte, bases [][]byte, fn func(kind EntryKind, hash Hash, same []Hash) error, valid bool) error {
	it, err := newTreeIter(h, p)
	if err != nil {
		return err
	}
	var buf [6]treeIter // parents and a few known tips: no allocation
	its := buf[:0]
	for _, bp := range bases {
		if bit, err := newTreeIter(ZeroHash, bp); err == nil && bit.next() {
			its = append(its, bit)
		}
	}
	var same []Hash
	for it.next() {
		same = same[:0]
		identical := false
		for i := range its {
			bi := &its[i]
			for !bi.done && entryCmp(bi.kind, bi.name, it.kind, it.name) < 0 {
				bi.next()
			}
			if bi.done || bi.kind != it.kind || !bytes.Equal(bi.name, it.name) {
				continue
			}
			if bytes.Equal(bi.hash, it.hash) {
				identical = true
				skipIdentical(&it, bi, valid)
				break
			}
			if it.kind == EntrySubtree {
				same = AppendUnique(same, Hash(bi.hash))
			}
		}
		if identical {
			continue
		}
		if err := fn(it.kind, Hash(it.hash), same); err != nil {
			return err
		}
	}
	return it.err
}

// skipIdentical moves it and bi, whose current entries are equal, over the
// entries that follow byte for byte identically in both trees, leaving both
// on the last such entry (equal, so it reports nothing). In a flat zone the
// apex tree of a one-record change differs from its base in one entry out
// of 100,000s; this turns the merge of the rest (two parses and several
// comparisons per entry) into one bulk byte comparison and a parse of it
// alone. The entries skipped in it are still parsed with it.next, so a
// corrupt tree fails exactly as before. Those in bi are not, and need not
// be: they are the same bytes, read from the same preceding entry, so
// bi.next would accept exactly what it.next accepted (and on an error the
// comparison stops anyway). The other bases are not moved here; the merge
// loop advances them when it next needs them, to the same positions. When
// it is known to keep every rule (valid: DiffValidTree), its entries in the
// run are stepped over by their lengths, not parsed.
func skipIdentical(it, bi *treeIter, valid bool) {
	start := it.off
	shift := bi.off - it.off
	end := start + commonPrefix(it.p[start:], bi.p[bi.off:])
	var n uint64
	last := -1
	for it.left > 0 && n < bi.left {
		off := it.off
		// Only whole entries inside the identical run; next() checks the
		// rest (kind, length, bounds, order) as always.
		if end-off < 2 || off+2+int(it.p[off+1])+32 > end {
			break
		}
		if valid {
			it.off = off + 2 + int(it.p[off+1]) + 32
			it.left--
			it.idx++
		} else if !it.next() {
			return // it.err is set; the comparison fails on it
		}
		last = off
		n++
	}
	if n == 0 {
		return
	}
	if valid {
		// it's current entry is the last one stepped over, as next()
		// would have left it.
		l := int(it.p[last+1])
		it.kind, it.name, it.hash = EntryKind(it.p[last]), it.p[last+2:last+2+l], it.p[last+2+l:last+2+l+32]
	}
	l := len(it.name)
	bo := last + shift
	bi.off = it.off + shift
	bi.left -= n
	bi.idx += int(n)
	bi.kind, bi.name, bi.hash = EntryKind(bi.p[bo]), bi.p[bo+2:bo+2+l], bi.p[bo+2+l:bo+2+l+32]
}

// commonPrefix returns the length of the longest common prefix of a and b,
// comparing in blocks first (memequal is vectorised; a byte loop over a
// 4 MB apex tree is not).
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	const block = 512
	i := 0
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
