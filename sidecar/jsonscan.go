package sidecar

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// A request body is read where it lies: the members the sidecar checks
// are found by walking the JSON's bytes, and everything else is passed
// on as sent, never decoded into values and encoded again. Every walk
// here expects JSON that validJSON accepted (parseRequest checks that
// first), so it only finds where values begin and end. Strings are
// decoded as encoding/json decodes them (escapes, invalid UTF-8), and
// only when they hold an escape or a byte that is not UTF-8: otherwise
// a string's bytes are its value.

// skipSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the end of the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	// A number, true, false or null: up to the next delimiter.
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// stringEnd returns the end of the JSON string that starts at b[i] (its
// opening quote): past the first quote after it that no backslash
// escapes.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b)
		}
		j += q
		// Escaped when an odd number of backslashes precede it.
		n := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		j++
		if n%2 == 0 {
			return j
		}
	}
	return len(b)
}

// members walks the members of a JSON object, in order.
type members struct {
	b []byte
	i int
}

// objectMembers returns a walk of the object v (a whole JSON object).
func objectMembers(v []byte) members {
	return members{b: v, i: 1}
}

// next returns the next member: its key (decoded), its value as sent,
// and the value's offset in the object; ok is false after the last.
func (m *members) next() (key, val []byte, at int, ok bool) {
	i := skipSpace(m.b, m.i)
	if i < len(m.b) && m.b[i] == ',' {
		i = skipSpace(m.b, i+1)
	}
	if i >= len(m.b) || m.b[i] != '"' {
		return nil, nil, 0, false
	}
	ke := stringEnd(m.b, i)
	key = stringValue(m.b[i:ke])
	i = skipSpace(m.b, ke)
	i = skipSpace(m.b, i+1) // the colon
	if i >= len(m.b) {
		return nil, nil, 0, false
	}
	ve := valueEnd(m.b, i)
	m.i = ve
	return key, m.b[i:ve], i, true
}

// elements walks the elements of a JSON array, in order.
type elements struct {
	b []byte
	i int
}

// arrayElements returns a walk of the array v (a whole JSON array).
func arrayElements(v []byte) elements {
	return elements{b: v, i: 1}
}

// next returns the next element as sent; ok is false after the last.
func (e *elements) next() (val []byte, ok bool) {
	i := skipSpace(e.b, e.i)
	if i < len(e.b) && e.b[i] == ',' {
		i = skipSpace(e.b, i+1)
	}
	if i >= len(e.b) || e.b[i] == ']' {
		return nil, false
	}
	ve := valueEnd(e.b, i)
	e.i = ve
	return e.b[i:ve], true
}

// nonEmptyArray reports whether v is an array with an element.
func nonEmptyArray(v []byte) bool {
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	el := arrayElements(v)
	_, ok := el.next()
	return ok
}

// stringValue decodes a JSON string (quotes included) as encoding/json
// does; nil when v is not a string. Without an escape or a byte that is
// not UTF-8 it is v's own bytes, inside the quotes.
func stringValue(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return nil
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return in
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil
	}
	return []byte(s)
}

// isString reports whether v is the JSON string s.
func isString(v []byte, s string) bool {
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	if in := v[1 : len(v)-1]; bytes.IndexByte(in, '\\') < 0 {
		// Not UTF-8 decodes to U+FFFD, which no ASCII s holds.
		return string(in) == s
	}
	return string(stringValue(v)) == s
}

// keySet finds keys seen before in one object: a few compared in place,
// more in a map.
type keySet struct {
	few  [16][]byte
	n    int
	many map[string]struct{}
}

// add records key and reports whether it was there already.
func (k *keySet) add(key []byte) bool {
	if k.many != nil {
		if _, ok := k.many[string(key)]; ok {
			return true
		}
		k.many[string(key)] = struct{}{}
		return false
	}
	for _, s := range k.few[:k.n] {
		if bytes.Equal(s, key) {
			return true
		}
	}
	if k.n < len(k.few) {
		k.few[k.n] = key
		k.n++
		return false
	}
	k.many = make(map[string]struct{}, 2*len(k.few))
	for _, s := range k.few {
		k.many[string(s)] = struct{}{}
	}
	k.many[string(key)] = struct{}{}
	return false
}

// wholeNumberFast reads a JSON integer of up to 15 digits with no sign,
// fraction or exponent (every max_tokens an SDK sends); ok is false for
// anything else, which wholeNumber then reads.
func wholeNumberFast(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isNumber reports whether v is a JSON number a float64 holds (what
// json.Unmarshal into a float64 accepts).
func isNumber(v []byte) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return false
	}
	if len(v) <= 15 && !bytes.ContainsAny(v, "eE") {
		return true // no exponent, 15 digits at most: in range
	}
	var f float64
	return json.Unmarshal(v, &f) == nil
}

// maxNesting is how deep encoding/json lets JSON nest.
const maxNesting = 10000

// validJSON reports whether b is one JSON value, as json.Valid does
// (nesting at most 10,000 deep, bytes that are not UTF-8 taken inside
// strings), without its byte-at-a-time state machine: a long string is
// one loop.
func validJSON(b []byte) bool {
	var buf [64]byte
	open := buf[:0] // the containers the value is in, '{' or '['
	i := skipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(open) == maxNesting {
				return false
			}
			open = append(open, c)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' and ']' are '{' and '[' plus 2
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				if i = validKey(b, i); i < 0 {
					return false
				}
			}
			continue
		case c == '"':
			if i = validString(b, i); i < 0 {
				return false
			}
		case c == 't':
			if !bytes.HasPrefix(b[i:], []byte("true")) {
				return false
			}
			i += 4
		case c == 'f':
			if !bytes.HasPrefix(b[i:], []byte("false")) {
				return false
			}
			i += 5
		case c == 'n':
			if !bytes.HasPrefix(b[i:], []byte("null")) {
				return false
			}
			i += 4
		default:
			if i = validNumber(b, i); i < 0 {
				return false
			}
		}
		// After a value: the end, the next member or element, or the end
		// of containers.
		for {
			i = skipSpace(b, i)
			if len(open) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := open[len(open)-1]
			if b[i] == top+2 {
				open = open[:len(open)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return false
			}
			i = skipSpace(b, i+1)
			if top == '{' {
				if i = validKey(b, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// validKey checks an object's key and its colon at b[i]; it returns
// where the value starts, or -1.
func validKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// validString checks the string at b[i] (its opening quote); it returns
// its end, or -1.
func validString(b []byte, i int) int {
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// validNumber checks the number at b[i]; it returns its end, or -1.
func validNumber(b []byte, i int) int {
	digits := func(i int) int {
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}
