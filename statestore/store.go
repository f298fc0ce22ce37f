package statestore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors returned by Store.
var (
	// ErrUnavailable wraps every failure to reach Redis or run a script.
	ErrUnavailable = errors.New("statestore: redis unavailable")
	// ErrInvalid is returned for an argument out of range (a negative
	// count, an unknown override).
	ErrInvalid = errors.New("statestore: invalid argument")
)

// Options tunes a Store. A zero field means the default on its comment.
type Options struct {
	// Prefix starts every key and the channel name. Default "fusebox".
	Prefix string
	// EventsCap is the approximate number of events kept per breaker.
	// Default 1000.
	EventsCap int
	// PubSub says how transitions are published. Default PubSubAuto:
	// sharded on a *redis.ClusterClient, plain elsewhere. Every agent and
	// coordinator of one deployment must use the same.
	PubSub PubSubMode
}

// PubSubMode is how transitions are published and heard.
type PubSubMode string

// Pub/sub modes.
const (
	// PubSubAuto is PubSubSharded on a *redis.ClusterClient and
	// PubSubPlain on any other client.
	PubSubAuto PubSubMode = ""
	// PubSubPlain PUBLISHes every transition on one channel,
	// <prefix>:changes, and every subscriber hears every breaker. On
	// Redis Cluster a PUBLISH is broadcast to every node.
	PubSubPlain PubSubMode = "plain"
	// PubSubSharded SPUBLISHes each breaker's transitions on its own
	// shard channel, <prefix>:{NAME}:changes, in the breaker's hash tag
	// (Redis 7): only the node that owns the breaker delivers them, and a
	// subscriber hears only the breakers it follows (Store.Follow).
	PubSubSharded PubSubMode = "sharded"
)

// Store reads and writes breaker state in Redis. It is safe for
// concurrent use: it holds no state of its own beyond its settings, and
// every change is one atomic script in Redis.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	channel   string
	sharded   bool
	eventsCap string
}

// New returns a Store on rdb. It does no I/O.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil redis client", ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.EventsCap <= 0 {
		opts.EventsCap = 1000
	}
	var sharded bool
	switch opts.PubSub {
	case PubSubAuto:
		_, sharded = rdb.(*redis.ClusterClient)
	case PubSubPlain:
	case PubSubSharded:
		sharded = true
	default:
		return nil, fmt.Errorf("%w: pub/sub mode %q: want %q or %q", ErrInvalid, opts.PubSub, PubSubPlain, PubSubSharded)
	}
	return &Store{
		rdb:       rdb,
		prefix:    opts.Prefix,
		channel:   opts.Prefix + ":changes",
		sharded:   sharded,
		eventsCap: strconv.Itoa(opts.EventsCap),
	}, nil
}

// Channel is the plain pub/sub channel, on which every transition is
// published unless the store is Sharded.
func (s *Store) Channel() string { return s.channel }

// Sharded reports whether transitions go on each breaker's own shard
// channel (SPUBLISH) rather than on Channel.
func (s *Store) Sharded() bool { return s.sharded }

// ChannelOf is the channel a breaker's transitions are published on:
// its shard channel when Sharded, else Channel.
func (s *Store) ChannelOf(name string) string {
	if s.sharded {
		return s.changesChannel(name)
	}
	return s.channel
}

// publishArg is what common.lua's ARGV[2] says: the command and the
// channel of one breaker's transitions.
func (s *Store) publishArg(name string) string {
	if s.sharded {
		return "SPUBLISH " + s.changesChannel(name)
	}
	return "PUBLISH " + s.channel
}

// Client is the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Batch is one agent's report for one breaker (docs/protocol.md).
type Batch struct {
	// Boot and Seq identify the report: a batch whose (Boot, Seq) is not
	// newer than the last one applied for this agent is a repeat and
	// changes nothing. An empty Boot skips the check.
	Boot string
	Seq  int64
	// Fenced counts the outcomes only against the state they were allowed
	// under, Gen and Version; unfenced batches count against whatever
	// state is current.
	Fenced  bool
	Gen     string
	Version int64

	OK           int64
	Fail         int64
	TrailingFail int64 // failures after the batch's last success
	Slow         int64
	// LastOKAge is how long before the batch was taken its last success
	// completed.
	LastOKAge time.Duration
	// Hung counts calls that crossed the policy's HangAfter, still waiting
	// for a first byte, since the last batch; HungWaiting are past it now,
	// the oldest for HungOldest.
	Hung        int64
	HungWaiting int64
	HungOldest  time.Duration
	RetryAfter  time.Duration // the largest Retry-After seen; 0 = none
	// Misconfigured counts failures the provider gave for the caller's
	// credentials (401, 403): they open the breaker for the policy's
	// MisconfiguredOpen, reason misconfigured.
	Misconfigured int64
	LastError     string
	// Probe is the traffic-mode probe's verdict, when this batch carries it.
	Probe *ProbeOutcome
}

// ProbeOutcome is the result of one half-open probe.
type ProbeOutcome struct {
	// Gen and Epoch name the window the probe ran in.
	Gen        string
	Epoch      int64
	OK         bool
	Error      string
	RetryAfter time.Duration
	// Token is the canary prober's fencing token (ProbeStart); required
	// by ProbeResult.
	Token string
	// Nonce is the traffic-mode permit's secret (AcquirePermit); required
	// for a probe carried by a Batch.
	Nonce string
	// Release gives a traffic-mode window back with no verdict (the probe
	// call said nothing about the provider): a new window starts at once.
	Release bool
}

// Report applies a batch of outcomes to a breaker and trips it when the
// policy says so. The batch is applied whole or not at all;
// Result.Applied says which.
func (s *Store) Report(ctx context.Context, name string, p Policy, agent string, b Batch) (Result, error) {
	if b.OK < 0 || b.Fail < 0 || b.TrailingFail < 0 || b.Slow < 0 || b.RetryAfter < 0 || b.Hung < 0 ||
		b.HungWaiting < 0 || b.HungOldest < 0 || b.LastOKAge < 0 || b.Seq < 0 || b.Version < 0 || b.Misconfigured < 0 {
		return Result{}, fmt.Errorf("%w: negative count in batch", ErrInvalid)
	}
	if b.TrailingFail > b.Fail {
		b.TrailingFail = b.Fail
	}
	var pe, pgen, pok, perr, pra, pnonce, prel = "0", "", "0", "", "0", "", "0"
	if pr := b.Probe; pr != nil && pr.Epoch > 0 {
		pe, pgen, pok, perr = strconv.FormatInt(pr.Epoch, 10), pr.Gen, boolArg(pr.OK), pr.Error
		pra, pnonce, prel = strconv.FormatInt(pr.RetryAfter.Milliseconds(), 10), pr.Nonce, boolArg(pr.Release)
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	ms := func(d time.Duration) string { return i64(d.Milliseconds()) }
	keys := append(s.keys(name), s.seqKey(name, agent), s.failersKey(name), s.localKey(name, agent))
	return s.runKeys(ctx, reportScript, name, keys, p, agent,
		b.Boot, i64(b.Seq), boolArg(b.Fenced), b.Gen, i64(b.Version),
		i64(b.OK), i64(b.Fail), i64(b.TrailingFail), i64(b.Slow), ms(b.LastOKAge),
		i64(b.Hung), i64(b.HungWaiting), ms(b.HungOldest), ms(b.RetryAfter), b.LastError,
		pe, pgen, pok, perr, pra, pnonce, prel,
		i64(b.Misconfigured), ms(p.MisconfiguredOpen))
}

// Tick moves a breaker whose open time has passed to half-open, starts a
// new half-open window when a probe timed out, and ends an override whose
// ttl has passed. It is idempotent: the first caller makes the change,
// every other caller sees no change.
func (s *Store) Tick(ctx context.Context, name string, p Policy, actor string) (Result, error) {
	return s.run(ctx, tickScript, name, p, actor)
}

// ProbeStart claims the half-open window epoch for a canary probe with a
// fencing token, and journals probe_started. Result.Granted is false when
// the window is over (another epoch, closed, forced) or another prober
// claimed it less than claimTTL ago. A window whose prober vanished
// (claimed longer ago, no result) ends without a verdict and the claim
// goes to a new window: Result.Epoch is the window claimed, the one whose
// result ProbeResult must name.
func (s *Store) ProbeStart(ctx context.Context, name string, p Policy, actor string, epoch int64, token string, claimTTL time.Duration) (Result, error) {
	if token == "" || claimTTL <= 0 {
		return Result{}, fmt.Errorf("%w: a probe claim needs a token and a positive ttl", ErrInvalid)
	}
	return s.run(ctx, probeStartScript, name, p, actor, strconv.FormatInt(epoch, 10), token, strconv.FormatInt(claimTTL.Milliseconds(), 10))
}

// ProbeResult applies a canary probe's result. It is fenced by epoch and
// token: a result for an earlier half-open window, arriving after the
// breaker moved on, or from a prober whose window another has since
// claimed, returns Result.Stale and changes nothing. The token is
// required.
func (s *Store) ProbeResult(ctx context.Context, name string, p Policy, actor string, o ProbeOutcome) (Result, error) {
	if o.Token == "" {
		return Result{}, fmt.Errorf("%w: a probe result needs the token its window was claimed with", ErrInvalid)
	}
	return s.run(ctx, probeScript, name, p, actor,
		strconv.FormatInt(o.Epoch, 10), boolArg(o.OK), o.Error,
		strconv.FormatInt(o.RetryAfter.Milliseconds(), 10), o.Token)
}

// ProbeLockKey is the key of the redsync lock that lets one coordinator
// probe the half-open window epoch; it shares the breaker's hash tag.
func (s *Store) ProbeLockKey(name string, epoch int64) string {
	return s.prefix + ":{" + name + "}:probe:" + strconv.FormatInt(epoch, 10)
}

// Force sets an operator override. ttl 0 keeps it until released.
func (s *Store) Force(ctx context.Context, name string, p Policy, actor string, o Override, ttl time.Duration, reason string) (Result, error) {
	if o != OverrideOpen && o != OverrideClosed {
		return Result{}, fmt.Errorf("%w: override must be %q or %q, got %q", ErrInvalid, OverrideOpen, OverrideClosed, o)
	}
	if ttl < 0 {
		return Result{}, fmt.Errorf("%w: negative ttl", ErrInvalid)
	}
	return s.run(ctx, forceScript, name, p, actor, string(o), strconv.FormatInt(ttl.Milliseconds(), 10), reason)
}

// Release ends an override; the breaker resumes closed with fresh
// counters. Without an override it changes nothing.
func (s *Store) Release(ctx context.Context, name string, p Policy, actor, reason string) (Result, error) {
	return s.run(ctx, releaseScript, name, p, actor, reason)
}

// Reset closes a breaker with fresh counters and ends any override.
func (s *Store) Reset(ctx context.Context, name string, p Policy, actor, reason string) (Result, error) {
	return s.run(ctx, resetScript, name, p, actor, reason)
}

// AcquirePermit asks for the one traffic-mode probe permit of the
// half-open window (gen, epoch). It is granted to one caller per window,
// cluster-wide, and only while the breaker is half-open in that window.
// nonce is the caller's secret: the verdict it reports (Batch.Probe) must
// carry it.
func (s *Store) AcquirePermit(ctx context.Context, name string, p Policy, agent, gen string, epoch int64, nonce string) (Result, error) {
	if nonce == "" {
		return Result{}, fmt.Errorf("%w: a permit needs a nonce", ErrInvalid)
	}
	return s.run(ctx, permitScript, name, p, agent, strconv.FormatInt(epoch, 10), agent, gen, nonce)
}

func (s *Store) run(ctx context.Context, script *redis.Script, name string, p Policy, actor string, extra ...any) (Result, error) {
	if !ValidName(name) {
		return Result{}, ErrInvalidName
	}
	return s.runKeys(ctx, script, name, s.keys(name), p, actor, extra...)
}

func (s *Store) runKeys(ctx context.Context, script *redis.Script, name string, keys []string, p Policy, actor string, extra ...any) (Result, error) {
	if !ValidName(name) {
		return Result{}, ErrInvalidName
	}
	pargs, err := p.args()
	if err != nil {
		return Result{}, fmt.Errorf("%w: policy: %w", ErrInvalid, err)
	}
	args := make([]any, 0, 4+len(pargs)+len(extra))
	args = append(args, name, s.publishArg(name), s.eventsCap, actor)
	args = append(args, pargs...)
	args = append(args, extra...)
	raw, err := script.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return Result{}, wrapRedis(ctx, err)
	}
	return parseReply(name, raw)
}

// parseReply maps a script's reply (common.lua) to a Result.
func parseReply(name string, r []string) (Result, error) {
	if len(r) != 18 {
		return Result{}, fmt.Errorf("%w: script reply has %d fields, want 18", ErrUnavailable, len(r))
	}
	var res Result
	res.Name = name
	res.State = State(r[1])
	res.Override = Override(r[2])
	res.Version = atoi(r[3])
	res.Epoch = atoi(r[4])
	res.RetryInMS = atoi(r[5])
	res.Gen = r[6]
	res.FailureCount = atoi(r[11])
	res.LastError = r[12]
	res.Applied = Applied(r[15])
	res.Probe = ProbeVerdict(r[16])
	res.LocalOpen = time.Duration(atoi(r[17])) * time.Millisecond
	switch r[0] {
	case codeTransition:
		res.Gone = r[9] == "deleted" || r[9] == "expired"
		res.Transition = &Transition{
			Event:        r[9],
			Breaker:      name,
			OldState:     r[7],
			NewState:     r[8],
			Version:      res.Version,
			Reason:       r[10],
			FailureCount: res.FailureCount,
			LastError:    r[12],
			Actor:        r[13],
			Time:         time.UnixMilli(atoi(r[14])),
		}
	case codeStale:
		res.Stale = true
	case codeGranted:
		res.Granted = true
	case codeGone:
		res.Gone = true
	case codeNone:
	default:
		return Result{}, fmt.Errorf("%w: unknown script reply code %q", ErrUnavailable, r[0])
	}
	return res, nil
}

// wrapRedis turns a Redis error into ErrUnavailable wrapping its cause
// (errors.Is and errors.As see both), or the context's error when the
// caller gave up.
func wrapRedis(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("statestore: %w", ctx.Err())
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
