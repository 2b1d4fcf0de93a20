package replicate

import (
	"math/rand/v2"
	"testing"
)

// TestReceiptTable: the receipt table answers as a map does through
// growth, in-place updates and deletions (which rebuild a shard), for keys
// that share a shard and a home slot as well as random ones, and stays at
// most 80% full.
func TestReceiptTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab receiptTable
	ref := map[receiptKey]uint32{}
	key := func(i int) receiptKey {
		var k receiptKey
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		if i%7 == 0 {
			k[0], k[1], k[2], k[3], k[4] = 9, 0, 0, 0, 0 // one shard, one home slot
		}
		return k
	}
	var keys []receiptKey
	for i := range 50000 {
		k := key(i)
		v := rng.Uint32() | 1
		tab.put(k, v)
		ref[k] = v
		keys = append(keys, k)
	}
	check := func(when string) {
		t.Helper()
		if tab.n != len(ref) {
			t.Fatalf("%s: %d entries, want %d", when, tab.n, len(ref))
		}
		for _, k := range keys {
			v, ok := tab.get(k)
			rv, rok := ref[k]
			if ok != rok || v != rv {
				t.Fatalf("%s: get(%x) = %d, %v; want %d, %v", when, k, v, ok, rv, rok)
			}
		}
		for i := range tab.shards {
			s := &tab.shards[i]
			if s.n*5 > len(s.slots)*4 {
				t.Fatalf("%s: shard %d holds %d in %d slots", when, i, s.n, len(s.slots))
			}
		}
	}
	check("after puts")
	for _, k := range keys[:1000] {
		tab.put(k, 77)
		ref[k] = 77
	}
	check("after overwrites")
	tab.update(func(v uint32) uint32 {
		if v%3 == 0 {
			return 0
		}
		return v | 2
	})
	for k, v := range ref {
		if v%3 == 0 {
			delete(ref, k)
		} else {
			ref[k] = v | 2
		}
	}
	check("after update")
	if _, ok := tab.get(receiptKey{1, 2, 3}); ok {
		t.Fatal("a key never put is found")
	}
}
