package statestore

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed common.lua
	commonLua string
	//go:embed report.lua
	reportLua string
	//go:embed tick.lua
	tickLua string
	//go:embed probe.lua
	probeLua string
	//go:embed force.lua
	forceLua string
	//go:embed release.lua
	releaseLua string
	//go:embed reset.lua
	resetLua string
	//go:embed permit.lua
	permitLua string
	//go:embed probe_start.lua
	probeStartLua string
	//go:embed forget.lua
	forgetLua string
	//go:embed register.lua
	registerLua string
	//go:embed unregister.lua
	unregisterLua string
	//go:embed reindex.lua
	reindexLua string
)

// Each script is common.lua followed by its own file, so the shared
// helpers run inside the same atomic call.
var (
	reportScript     = redis.NewScript(commonLua + reportLua)
	tickScript       = redis.NewScript(commonLua + tickLua)
	probeScript      = redis.NewScript(commonLua + probeLua)
	forceScript      = redis.NewScript(commonLua + forceLua)
	releaseScript    = redis.NewScript(commonLua + releaseLua)
	resetScript      = redis.NewScript(commonLua + resetLua)
	permitScript     = redis.NewScript(commonLua + permitLua)
	probeStartScript = redis.NewScript(commonLua + probeStartLua)
	forgetScript     = redis.NewScript(commonLua + forgetLua)
	// The registry's own scripts: no common.lua, no breaker keys.
	registerScript   = redis.NewScript(registerLua)
	unregisterScript = redis.NewScript(unregisterLua)
	reindexScript    = redis.NewScript(reindexLua)
)

// reply codes (common.lua).
const (
	codeNone       = "0"
	codeTransition = "1"
	codeStale      = "2"
	codeGranted    = "3"
	codeGone       = "4"
)
