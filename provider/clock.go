package provider

import "time"

// Clock tells the time; nil means the wall clock.
type Clock interface{ Now() time.Time }

func now(c Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}
