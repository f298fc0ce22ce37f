package agentlib

import "time"

// Clock tells the time. nil in Config means the wall clock. An agent calls
// Now from many goroutines at once (every Allow's caller, the flusher,
// the resync loop): an implementation must be safe for concurrent use.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
