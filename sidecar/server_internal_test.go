package sidecar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("0123456789", 100)
	for _, c := range []struct {
		name string
		size int64
	}{
		{"the size the body says", 1000},
		{"no size", -1},
		{"a size too small", 10},
		{"a size too large", 5000},
		{"a size over the cap", 1 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(body), iotest.OneByteReader(strings.NewReader(body)), iotest.DataErrReader(strings.NewReader(body))} {
				got, err := readAll(r, c.size)
				if err != nil || string(got) != body {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
		})
	}
	t.Run("a read error is returned with what came before it", func(t *testing.T) {
		boom := errors.New("boom")
		got, err := readAll(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), 100)
		if !errors.Is(err, boom) || string(got) != "abc" {
			t.Fatalf("%q, %v", got, err)
		}
	})
}
