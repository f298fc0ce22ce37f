package coordinator

import (
	"sync"

	"github.com/fusebox-io/fusebox/statestore"
)

// hub fans the journaled events this coordinator hears on the change
// channel out to live listeners (the admin event stream). publish never
// blocks: a listener that cannot keep up is dropped. Safe for concurrent
// use.
type hub struct {
	mu   sync.Mutex
	subs map[chan statestore.Event]struct{} // guarded by mu
}

func (h *hub) subscribe() (<-chan statestore.Event, func()) {
	ch := make(chan statestore.Event, 256)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan statestore.Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
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
