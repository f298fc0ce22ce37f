//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fusebox-io/fusebox/internal/testcluster"
)

const (
	adminToken = "it-admin-token-0123456789"
	agentToken = "it-agent-token-0123456789"
)

// Images come from `make images`. FUSEBOX_REDIS_IMAGE may name a stock
// Redis image instead (any image whose entrypoint is redis-server).
var (
	tag          = envOr("FUSEBOX_IMAGE_TAG", "local")
	redisImage   = envOr("FUSEBOX_REDIS_IMAGE", "fusebox/redis:"+tag)
	coordImage   = "fusebox/coordinator:" + tag
	agentImage   = "fusebox/agent:" + tag
	fakeImage    = "fusebox/fakeprovider:" + tag
	httpClient   = &http.Client{Timeout: 15 * time.Second}
	suiteTimeout = 3 * time.Minute
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	// testcontainers reads these once, before its first call: the reaper
	// image cannot be pulled here, and the host is this machine.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	if os.Getenv("FUSEBOX_IT_CONTAINER_LOGS") == "" {
		tclog.SetDefault(quiet{}) // a container's start and stop are not news
	}
	for _, img := range []string{redisImage, coordImage, agentImage, fakeImage} {
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: image %s is missing: build the images with `make images` (no registry is needed)\n", img)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// node is one container and, for HTTP services, its URL on this machine.
type node struct {
	name string
	c    *testcontainers.DockerContainer
	url  string
}

// env is one suite's cluster. Two private networks: "ctl" joins Redis,
// the coordinators and the sidecars; "data" joins the sidecars, the
// coordinators and the fake provider. Cutting a sidecar off ctl is a
// partition from Redis and the coordinators that leaves its providers
// reachable.
type env struct {
	t    *testing.T
	ctx  context.Context
	ctl  string
	data string
	// ctl0 replaces ctl for agent-0 when the suite cuts it off: Redis and
	// the coordinators leave ctl0, agent-0 keeps its own endpoints (and its
	// published port).
	ctl0   string
	redis  *node
	extra  []*node // the suite's own Redis containers
	coords []*node
	agents []*node
	fake   *node
}

type options struct {
	coordYAML   string
	sidecarYAML string
	redisURL    string   // as the coordinators and sidecars see it
	redisArgs   []string // extra redis-server arguments
	noRedis     bool     // the suite starts its own Redis
	coordEnv    map[string]string
	agentEnv    map[string]string
	// partitionable gives agent-0 its own control network (ctl0).
	partitionable bool
	// redisHook starts the suite's own Redis (with noRedis).
	redisHook func(e *env)
}

const defaultCoordYAML = `
defaults:
  consecutive_failures: 5
  open_timeout: 1s
  max_open_timeout: 2s
  canary_interval: 1s
  canary_max_interval: 2s
  probe_timeout: 10s
breakers:
  openai:
    canary:
      kind: openai
      url: http://fakeprovider:9090/openai/v1
      model: gpt-4o-mini
      timeout: 1s
`

const defaultSidecarYAML = `
providers:
  openai:
    kind: openai
    base_url: http://fakeprovider:9090/openai/v1
    api_key_env: OPENAI_API_KEY
    timeouts: {connect: 500ms, first_byte: 1s, total: 3s}
  anthropic:
    kind: anthropic
    base_url: http://fakeprovider:9090/anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: {"*": claude-3-5-haiku-latest}
    timeouts: {connect: 500ms, first_byte: 1s, total: 3s}
routes:
  - name: chat
    chain: [openai, anthropic]
retry: {attempts: 2, base: 50ms, max: 200ms}
`

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx}
	// Docker publishes a container's ports on the endpoint of the network
	// whose name sorts first: name them so that ctl0, the one a suite
	// disconnects, sorts last.
	prefix := fmt.Sprintf("fbx-it-%d", time.Now().UnixNano())
	e.ctl = e.network(prefix + "-a-ctl")
	e.data = e.network(prefix + "-b-data")
	ctlNets := []string{e.ctl}
	if o.partitionable {
		e.ctl0 = e.network(prefix + "-z-ctl0")
		ctlNets = append(ctlNets, e.ctl0)
	}
	if o.coordYAML == "" {
		o.coordYAML = defaultCoordYAML
	}
	if o.sidecarYAML == "" {
		o.sidecarYAML = defaultSidecarYAML
	}
	if o.redisURL == "" {
		o.redisURL = "redis://redis:6379"
	}
	if !o.noRedis {
		e.redis = e.runCmd(redisImage, "redis", ctlNets, nil, nil, append([]string{"--appendonly", "yes", "--appendfsync", "always"}, o.redisArgs...),
			wait.ForLog("Ready to accept connections"), "6379/tcp")
	}
	if o.redisHook != nil {
		o.redisHook(e)
	}
	e.fake = e.run(fakeImage, "fakeprovider", []string{e.data}, map[string]string{"FAKEPROVIDER_LISTEN": "0.0.0.0:9090"}, nil, "9090/tcp")
	for i := range 2 {
		name := fmt.Sprintf("coordinator-%d", i)
		envs := map[string]string{
			"FUSEBOX_REDIS_URL": o.redisURL, "FUSEBOX_LISTEN": "0.0.0.0:8080", "FUSEBOX_CONFIG": "/etc/fusebox/fusebox.yaml",
			"FUSEBOX_ID": name, "FUSEBOX_TICK": "50ms", "FUSEBOX_PROBE_LOCK_MARGIN": "500ms",
			"FUSEBOX_TOKENS": "ops:admin:" + adminToken + ",agents:agent:" + agentToken,
		}
		for k, v := range o.coordEnv {
			envs[k] = v
		}
		e.coords = append(e.coords, e.run(coordImage, name, append(append([]string{}, ctlNets...), e.data), envs,
			[]testcontainers.ContainerFile{{Reader: strings.NewReader(o.coordYAML), ContainerFilePath: "/etc/fusebox/fusebox.yaml", FileMode: 0o444}}, "8080/tcp"))
	}
	for i := range 3 {
		name := fmt.Sprintf("agent-%d", i)
		envs := map[string]string{
			"FUSEBOX_AGENT_LISTEN": "0.0.0.0:8787", "FUSEBOX_AGENT_CONFIG": "/etc/fusebox/sidecar.yaml",
			"FUSEBOX_COORDINATOR_URL": "http://coordinator-0:8080,http://coordinator-1:8080",
			"FUSEBOX_REDIS_URL":       o.redisURL + sep(o.redisURL) + "dial_timeout=300ms&read_timeout=300ms&write_timeout=300ms",
			"FUSEBOX_AGENT_TOKEN":     agentToken, "FUSEBOX_AGENT_ID": name, "FUSEBOX_RESYNC_INTERVAL": "300ms",
			"OPENAI_API_KEY": "sk-it-openai", "ANTHROPIC_API_KEY": "sk-it-anthropic",
		}
		for k, v := range o.agentEnv {
			envs[k] = v
		}
		ctl := e.ctl
		if o.partitionable && i == 0 {
			ctl = e.ctl0
		}
		e.agents = append(e.agents, e.run(agentImage, name, []string{e.data, ctl}, envs,
			[]testcontainers.ContainerFile{{Reader: strings.NewReader(o.sidecarYAML), ContainerFilePath: "/etc/fusebox/sidecar.yaml", FileMode: 0o444}}, "8787/tcp"))
	}
	return e
}

// network creates a private network, labelled like testcontainers' own so
// .ci/run's cleanup finds it if a test dies.
func (e *env) network(name string) string {
	e.t.Helper()
	docker(e.t, "network", "create", "--label", "org.testcontainers=true", name)
	e.t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
	return name
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// startRedis runs a Redis on ctl under alias name.
func (e *env) startRedis(name string, args ...string) *node {
	e.t.Helper()
	n := e.runCmd(redisImage, name, []string{e.ctl}, nil, nil, args, wait.ForLog("Ready to accept connections"), "6379/tcp")
	e.extra = append(e.extra, n)
	return n
}

func (e *env) run(image, name string, nets []string, envs map[string]string, files []testcontainers.ContainerFile, port string) *node {
	e.t.Helper()
	return e.runCmd(image, name, nets, envs, files, nil, wait.ForHTTP("/healthz").WithPort(port).WithStartupTimeout(30*time.Second), port)
}

func (e *env) runCmd(image, name string, nets []string, envs map[string]string, files []testcontainers.ContainerFile, cmd []string, w wait.Strategy, port string, more ...testcontainers.ContainerCustomizer) *node {
	e.t.Helper()
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(port),
		testcontainers.WithWaitStrategyAndDeadline(40*time.Second, w),
	}
	opts = append(opts, more...)
	if envs != nil {
		opts = append(opts, testcontainers.WithEnv(envs))
	}
	if len(files) > 0 {
		opts = append(opts, testcontainers.WithFiles(files...))
	}
	if len(cmd) > 0 {
		opts = append(opts, testcontainers.WithCmdArgs(cmd...))
	}
	for _, n := range nets {
		opts = append(opts, network.WithNetworkName([]string{name}, n))
	}
	c, err := testcontainers.Run(e.ctx, image, opts...)
	testcontainers.CleanupContainer(e.t, c)
	if c != nil {
		// Registered after the cleanup above, so it runs first: a failed
		// suite shows what its containers said.
		e.t.Cleanup(func() {
			if !e.t.Failed() {
				return
			}
			out, _ := exec.Command("docker", "logs", "--tail", "30", c.GetContainerID()).CombinedOutput()
			e.t.Logf("--- last logs of %s ---\n%s", name, out)
		})
	}
	if err != nil {
		e.t.Fatalf("start %s (%s): %v", name, image, err)
	}
	n := &node{name: name, c: c}
	if strings.HasPrefix(port, "6379") || strings.HasPrefix(port, "26379") {
		return n
	}
	ep, err := c.PortEndpoint(e.ctx, port, "http")
	if err != nil {
		e.t.Fatalf("%s: endpoint: %v", name, err)
	}
	n.url = ep
	return n
}

// hostAddr is a container port's address on this machine.
func (e *env) hostAddr(n *node, port string) string {
	e.t.Helper()
	ep, err := n.c.PortEndpoint(e.ctx, port, "")
	if err != nil {
		e.t.Fatalf("%s: endpoint: %v", n.name, err)
	}
	return ep
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// fault schedules a fault at the fake provider.
func (e *env) fault(provider, body string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, e.fake.url+"/_control/faults/"+provider, strings.NewReader(body))
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("set fault %s: %v %v", body, resp, err)
	}
	resp.Body.Close()
}

func (e *env) heal(provider string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, e.fake.url+"/_control/faults/"+provider, nil)
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		e.t.Fatalf("heal %s: %v %v", provider, resp, err)
	}
	resp.Body.Close()
}

// calls is how many requests the fake provider got for provider.
func (e *env) calls(provider string) int64 {
	e.t.Helper()
	resp, err := httpClient.Get(e.fake.url + "/_control/stats")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Calls map[string]int64 }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return st.Calls[provider]
}

// event is a journal entry from the admin API.
type event struct {
	Event     string    `json:"event"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	NewState  string    `json:"new_state"`
	Timestamp time.Time `json:"timestamp"`
	OpenForMS int64     `json:"open_for_ms"`
}

// journal reads a breaker's events, oldest first, through a coordinator
// that answers.
func (e *env) journal(breaker string) []event {
	e.t.Helper()
	var lastErr error
	for _, c := range e.coords {
		req, _ := http.NewRequest(http.MethodGet, c.url+"/v1/breakers/"+breaker+"/events?limit=500", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		var body struct{ Events []event }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			lastErr = fmt.Errorf("%d %v", resp.StatusCode, err)
			continue
		}
		evs := body.Events
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
		return evs
	}
	e.t.Fatalf("no coordinator answered for the journal: %v", lastErr)
	return nil
}

// state reads a breaker's effective state.
func (e *env) state(breaker string) string {
	e.t.Helper()
	for _, c := range e.coords {
		req, _ := http.NewRequest(http.MethodGet, c.url+"/v1/breakers/"+breaker, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			continue
		}
		var b struct{ Effective string }
		_ = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return b.Effective
		}
		if resp.StatusCode == 404 {
			return "closed"
		}
	}
	return "unknown"
}

func newAdminRequest(url, body string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func (e *env) admin(path, body string) {
	e.t.Helper()
	req, _ := newAdminRequest(e.coords[0].url+path, body)
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("admin %s: %v %v", path, resp, err)
	}
	resp.Body.Close()
}

// metric sums a sidecar's or coordinator's metric lines that start with
// prefix (a name and, optionally, some of its labels).
func metric(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := httpClient.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// result is one client request through a sidecar.
type result struct {
	sidecar  int
	at       time.Time
	status   int // -1: no answer
	provider string
	err      string
	took     time.Duration
}

// load calls every sidecar at a steady rate until stopped (bounded in
// count and time), recording every answer.
type load struct {
	mu      sync.Mutex
	results []result // guarded by mu
	stop    atomic.Bool
	wg      sync.WaitGroup
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`

func (e *env) startLoad(every time.Duration) *load {
	l := &load{}
	client := &http.Client{Timeout: 20 * time.Second}
	for i, a := range e.agents {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			deadline := time.Now().Add(suiteTimeout)
			for n := 0; n < 20000 && !l.stop.Load() && time.Now().Before(deadline); n++ {
				r := chatOnce(client, i, a.url)
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				time.Sleep(every)
			}
		}()
	}
	e.t.Cleanup(l.halt)
	return l
}

// warmLoad starts the clients and waits until every sidecar has served
// some requests from the primary: the steady state each suite disturbs.
func (e *env) warmLoad() (*load, time.Time) {
	e.t.Helper()
	l := e.startLoad(20 * time.Millisecond)
	start := time.Now()
	eventually(e.t, 30*time.Second, "every sidecar served by the primary", func() bool { return l.servedBy(start, "openai", 3) })
	return l, start
}

func (l *load) halt() {
	l.stop.Store(true)
	l.wg.Wait()
}

// since returns the results of requests started at or after t.
func (l *load) since(t time.Time) []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []result
	for _, r := range l.results {
		if !r.at.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// servedBy reports whether, since t, every sidecar has answered at least
// k requests from provider.
func (l *load) servedBy(t time.Time, provider string, k int) bool {
	per := map[int]int{}
	for _, r := range l.since(t) {
		if r.status == 200 && r.provider == provider {
			per[r.sidecar]++
		}
	}
	for i := range 3 {
		if per[i] < k {
			return false
		}
	}
	return true
}

// failures lists the requests since t that did not get a 200.
func (l *load) failures(t time.Time) []result {
	var out []result
	for _, r := range l.since(t) {
		if r.status != 200 {
			out = append(out, r)
		}
	}
	return out
}

// eventually polls cond every 20 ms: each check is HTTP to containers.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testcluster.EventuallyEvery(t, d, 20*time.Millisecond, what, cond)
}
