package coordinator

import (
	"sync"

	"github.com/fusebox-io/fusebox/statestore"
)

// hub fans the journaled events this coordinator hears on the change
// channel out to live listeners (the admin event stream).
type hub struct {
	mu   sync.Mutex
	subs map[chan statestore.Event]struct{} // guarded by mu
}

// Subscribe returns a channel of every event published from now on, and a
// function that ends the subscription. A listener that falls 256 events
// behind is dropped: its channel is closed, and it resumes from its last
// event id like any reconnecting client.
func (c *Coordinator) Subscribe() (<-chan statestore.Event, func()) {
	ch := make(chan statestore.Event, 256)
	c.hub.mu.Lock()
	if c.hub.subs == nil {
		c.hub.subs = map[chan statestore.Event]struct{}{}
	}
	c.hub.subs[ch] = struct{}{}
	c.hub.mu.Unlock()
	return ch, func() {
		c.hub.mu.Lock()
		defer c.hub.mu.Unlock()
		if _, ok := c.hub.subs[ch]; ok {
			delete(c.hub.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) publish(e statestore.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}
