package replicate

import "testing"

// FlushMidStream makes pulls flush their batch whenever it holds n payload
// bytes, until the test ends (midStreamFlushBytes).
func FlushMidStream(t testing.TB, n int64) {
	old := midStreamFlushBytes.Swap(n)
	t.Cleanup(func() { midStreamFlushBytes.Store(old) })
}
