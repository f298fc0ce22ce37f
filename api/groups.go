package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/statestore"
)

// Groups. A breaker's group is its name up to its first ".": a sidecar's
// per-model breakers, <breaker>.<model> ("openai.gpt-4o"), are grouped
// under their provider's breaker ("openai"), which belongs to the group
// too. A name with no "." is its own group.

// groupOf is the group of a breaker's name.
func groupOf(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// maxGroupPages bounds the pages of the registry one request with
// ?group= reads: past it, next_cursor says where to go on.
const maxGroupPages = 8

// listGroup serves GET /v1/breakers?group=: the group's breakers, a page
// at a time, sorted by name. It reads the registry's pages from the
// group's first possible name and stops at its last, so a page may hold
// fewer than limit breakers (even none) with a next_cursor to follow.
func (s *Server) listGroup(c echo.Context, group, cursor string, limit int) error {
	if !statestore.ValidName(group) || strings.Contains(group, ".") {
		return badRequest("group: want a breaker name's part before its first \".\" (openai, for openai.gpt-4o), got %q", clipped(group))
	}
	if cursor == "" {
		cursor = groupCursor(group)
	}
	end := group + "/" // past every name that starts with group + "."
	out := []BreakerView{}
	next := ""
	for range maxGroupPages {
		page, err := s.d.Breakers(c.Request().Context(), cursor, limit)
		if err != nil {
			return err
		}
		for _, b := range page.Breakers {
			if b.Name >= end {
				return c.JSON(http.StatusOK, map[string]any{"breakers": out, "next_cursor": ""})
			}
			if groupOf(b.Name) != group {
				continue
			}
			out = append(out, viewBreaker(b))
			if len(out) == limit {
				return c.JSON(http.StatusOK, map[string]any{"breakers": out, "next_cursor": b.Name})
			}
		}
		if page.Next == "" {
			return c.JSON(http.StatusOK, map[string]any{"breakers": out, "next_cursor": ""})
		}
		cursor, next = page.Next, page.Next
	}
	return c.JSON(http.StatusOK, map[string]any{"breakers": out, "next_cursor": next})
}

// nameAlphabet is the characters of a breaker name, in byte order.
const nameAlphabet = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

const maxNameLen = 128

// groupCursor is the cursor a group's breakers start after: the greatest
// valid breaker name below group (no valid name lies between them), or
// "" when there is none. A page after it starts with group itself, or
// the first name above it.
func groupCursor(group string) string {
	head, c := group[:len(group)-1], group[len(group)-1]
	i := strings.IndexByte(nameAlphabet, c)
	if i == 0 { // "-": nothing lies between head and head+"-"
		return head
	}
	for i--; i >= 0; i-- {
		p := nameAlphabet[i]
		if head == "" && !(p >= '0' && p <= '9' || p >= 'A' && p <= 'Z' || p >= 'a' && p <= 'z') {
			continue // a name starts with a letter or a digit
		}
		return head + string(p) + strings.Repeat("z", maxNameLen-len(group))
	}
	return ""
}
