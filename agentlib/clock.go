package agentlib

import "time"

// Clock tells the time. nil in Config means the wall clock.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
