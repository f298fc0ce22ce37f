package api

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/statestore"
)

func TestGroupOf(t *testing.T) {
	for name, want := range map[string]string{
		"openai": "openai", "openai.gpt-4o": "openai", "ollama.llama3.2_1b": "ollama", "openai-eu": "openai-eu", "a.b.c": "a",
	} {
		if got := groupOf(name); got != want {
			t.Errorf("groupOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// No valid breaker name lies between a group's cursor and the group, and
// the cursor is below the group and a valid cursor itself.
func TestGroupCursor(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randomName := func(max int) string {
		n := 1 + r.IntN(max)
		b := make([]byte, n)
		for i := range b {
			b[i] = nameAlphabet[r.IntN(len(nameAlphabet))]
		}
		b[0] = "0aZ9z"[r.IntN(5)]
		return string(b)
	}
	groups := []string{"0", "9", "A", "Z", "a", "z", "openai", "o", "open-", "x-", "ab0", "aA", "a_", "a9", "openaiz", strings.Repeat("z", 127)}
	for range 200 {
		g := strings.ReplaceAll(randomName(12), ".", "_")
		groups = append(groups, g)
	}
	for _, g := range groups {
		cur := groupCursor(g)
		if cur != "" && (!statestore.ValidName(cur) || cur >= g) {
			t.Fatalf("groupCursor(%q) = %q: not a valid name below the group", g, cur)
		}
		// Names near the group and the cursor, and random ones.
		near := []string{g, g + ".m", g + "-x", g[:len(g)-1], cur, cur + "z", cur + "-", g[:len(g)-1] + "z"}
		for range 300 {
			near = append(near, randomName(14), g[:max(0, len(g)-1-r.IntN(len(g)))]+randomName(4))
		}
		for _, n := range near {
			if !statestore.ValidName(n) {
				continue
			}
			if n > cur && n < g {
				t.Fatalf("group %q: the name %q lies between its cursor %q and it", g, n, cur)
			}
		}
	}
	if c := groupCursor("0"); c != "" {
		t.Fatalf(`groupCursor("0") = %q, want "" (no name sorts before "0")`, c)
	}
	names := []string{"openai.o3", "anthropic", "openai", "openai-eu", "openai.gpt-4o", "openai_x", "openaj", "opena"}
	sort.Strings(names)
	var after []string
	for _, n := range names {
		if n > groupCursor("openai") {
			after = append(after, n)
		}
	}
	if strings.Join(after[:3], " ") != "openai openai-eu openai.gpt-4o" {
		t.Fatalf("after the cursor: %v", after)
	}
}
