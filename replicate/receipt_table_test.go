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

// TestReceiptTableReserve: after reserve(n), n uniform keys go in without
// a shard growing, on top of what the table held, and every key (old and
// new) is still found.
func TestReceiptTableReserve(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tab receiptTable
	random := func() receiptKey {
		var k receiptKey
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		return k
	}
	var keys []receiptKey
	for range 3000 {
		k := random()
		tab.put(k, 1)
		keys = append(keys, k)
	}
	const n = 200000
	tab.reserve(n)
	var sizes [256]int
	total := 0
	for i := range tab.shards {
		sizes[i] = len(tab.shards[i].slots)
		total += sizes[i]
	}
	if total > (3000+n)*2 {
		t.Fatalf("reserve(%d) over %d entries made %d slots", n, 3000, total)
	}
	for range n {
		k := random()
		tab.put(k, 2)
		keys = append(keys, k)
	}
	for i := range tab.shards {
		if len(tab.shards[i].slots) != sizes[i] {
			t.Fatalf("shard %d grew from %d to %d slots after reserve", i, sizes[i], len(tab.shards[i].slots))
		}
	}
	for _, k := range keys {
		if _, ok := tab.get(k); !ok {
			t.Fatalf("key %x lost", k)
		}
	}
	if tab.n != len(keys) {
		t.Fatalf("%d entries, want %d", tab.n, len(keys))
	}
}
