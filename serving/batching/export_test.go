package batching

// Waiting returns the number of requests the collector holds, waiting for
// their batch to start.
func (b *Batcher) Waiting() int { return int(b.waiting.Load()) }
