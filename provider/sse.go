package provider

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxEventSize bounds one server-sent event read by ReadEvent.
const MaxEventSize = 4 << 20

// Event is one server-sent event: Anthropic names its events (Name is
// message_start, content_block_delta, …); OpenAI sends data lines only
// (Name is "", and the last Data is "[DONE]").
type Event struct {
	Name string
	Data []byte
}

// Done is OpenAI's end-of-stream marker.
var Done = Event{Data: []byte("[DONE]")}

// IsDone reports whether e is OpenAI's "data: [DONE]".
func (e Event) IsDone() bool { return e.Name == "" && string(e.Data) == "[DONE]" }

// Bytes is the event on the wire: "event: NAME" when it has a name, one
// "data:" line per line of Data, and the blank line that ends it.
func (e Event) Bytes() []byte { return e.Append(nil) }

// Append appends the event on the wire (Bytes) to b.
func (e Event) Append(b []byte) []byte {
	if e.Name != "" {
		b = append(b, "event: "...)
		b = append(b, e.Name...)
		b = append(b, '\n')
	}
	data := e.Data
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(b, '\n')
}

// ReadEvent reads the next event that has data (comment-only blocks and
// blocks of id: or retry: lines alone are skipped). At the end of the
// stream it returns io.EOF when the last event was complete, and
// io.ErrUnexpectedEOF when the stream stopped inside an event; an event
// over MaxEventSize is an *InvalidError.
func ReadEvent(r *bufio.Reader) (Event, error) {
	var ev Event
	hasData := false
	size := 0
	for {
		line, err := readLine(r, &size)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if hasData || ev.Name != "" || size > 0 {
					return Event{}, io.ErrUnexpectedEOF
				}
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				return ev, nil
			}
			ev, size = Event{}, 0
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if hasData {
				ev.Data = append(ev.Data, '\n')
			}
			ev.Data = append(ev.Data, value...)
			hasData = true
		}
	}
}

// readLine reads one line without its LF or CR LF ending, counting
// the bytes of the event so far against MaxEventSize. A line that fits
// r's buffer is r's bytes, good until the next read.
func readLine(r *bufio.Reader, size *int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*size += len(chunk)
		if *size > MaxEventSize {
			return nil, invalid("stream", "an event larger than %d bytes", MaxEventSize)
		}
		if line == nil && err != bufio.ErrBufferFull {
			line = chunk
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				// A last line with no line ending: the event is cut.
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, nil
	}
}
