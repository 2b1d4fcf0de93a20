package replicate

import "encoding/binary"

// receiptTable is the receipt set's map from key to value (received.m):
// open addressing with linear probing in 256 shards, each grown by a
// quarter when it is 80% full, instead of a Go map. A Go map of 2M
// receipts was ~79 MB: its tables split in two when full, so on average
// little more than half their slots hold an entry. Here a shard is 64-80%
// full once it has grown, and growing copies one shard (1/256 of the
// set), not the whole. Keys are maphash output, uniform: the first byte
// picks the shard and the next four the slot.
//
// A value is never 0 (every receipt and every wanted link has a kind code
// in its bits), so 0 marks an empty slot.
type receiptTable struct {
	shards [256]tableShard
	n      int
}

type tableShard struct {
	slots []tableSlot
	n     int
}

type tableSlot struct {
	k receiptKey
	v uint32
}

// find returns the slot holding k, or the empty slot where it would go.
func (s *tableShard) find(k receiptKey) *tableSlot {
	n := uint64(len(s.slots))
	i := uint64(binary.LittleEndian.Uint32(k[1:5])) * n >> 32
	for {
		sl := &s.slots[i]
		if sl.v == 0 || sl.k == k {
			return sl
		}
		if i++; i == n {
			i = 0
		}
	}
}

// touch reads the slot where k's probe starts, so that its cache line is
// loaded before k is looked up: a receiver touches the slots of many
// frames one after the other, and the processor overlaps those misses,
// where the lookups, one per frame between a frame's other work, each
// waited for theirs.
func (t *receiptTable) touch(k receiptKey) uint32 {
	s := &t.shards[k[0]]
	n := uint64(len(s.slots))
	if n == 0 {
		return 0
	}
	return s.slots[uint64(binary.LittleEndian.Uint32(k[1:5]))*n>>32].v
}

// get returns k's value.
func (t *receiptTable) get(k receiptKey) (uint32, bool) {
	s := &t.shards[k[0]]
	if s.n == 0 {
		return 0, false
	}
	sl := s.find(k)
	return sl.v, sl.v != 0
}

// ref returns k's value to read and change in place (never to 0), or nil.
// It is valid until the next put.
func (t *receiptTable) ref(k receiptKey) *uint32 {
	s := &t.shards[k[0]]
	if s.n == 0 {
		return nil
	}
	if sl := s.find(k); sl.v != 0 {
		return &sl.v
	}
	return nil
}

// put sets k's value (v != 0).
func (t *receiptTable) put(k receiptKey, v uint32) {
	s := &t.shards[k[0]]
	if (s.n+1)*5 > len(s.slots)*4 {
		s.grow()
	}
	sl := s.find(k)
	if sl.v == 0 {
		sl.k = k
		s.n++
		t.n++
	}
	sl.v = v
}

func (s *tableShard) grow() { s.resize(max(8, len(s.slots)+len(s.slots)/4)) }

// reserve makes room for about n more entries, spread over the shards as
// uniform keys spread, so that putting them grows no shard: a flat zone's
// apex brings a million links at once, which growing by a quarter at a
// time would copy four times over.
func (t *receiptTable) reserve(n int) {
	per := n / len(t.shards)
	// Each shard's share varies by about its square root; a shard that
	// gets more grows as usual.
	per += 4*intSqrt(per) + 16
	for i := range t.shards {
		s := &t.shards[i]
		if need := (s.n + per) * 5 / 4; need > len(s.slots) {
			s.resize(need)
		}
	}
}

func intSqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// resize moves the shard's entries into a table of size slots.
func (s *tableShard) resize(size int) {
	old := s.slots
	s.slots = make([]tableSlot, size)
	for _, sl := range old {
		if sl.v != 0 {
			*s.find(sl.k) = sl
		}
	}
}

// update replaces every value by fn's answer for it; an answer of 0
// deletes the entry.
func (t *receiptTable) update(fn func(v uint32) uint32) {
	for i := range t.shards {
		s := &t.shards[i]
		deleted := false
		for j := range s.slots {
			if v := s.slots[j].v; v != 0 {
				s.slots[j].v = fn(v)
				deleted = deleted || s.slots[j].v == 0
			}
		}
		if deleted {
			s.rebuild(t)
		}
	}
}

// rebuild places the entries left after deletions again, as a probe
// stops at the first empty slot.
func (s *tableShard) rebuild(t *receiptTable) {
	old := s.slots
	s.slots = make([]tableSlot, len(old))
	t.n -= s.n
	s.n = 0
	for _, sl := range old {
		if sl.v != 0 {
			*s.find(sl.k) = sl
			s.n++
		}
	}
	t.n += s.n
}
