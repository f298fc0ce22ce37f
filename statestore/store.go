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
}

// Store reads and writes breaker state in Redis.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	channel   string
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
	return &Store{
		rdb:       rdb,
		prefix:    opts.Prefix,
		channel:   opts.Prefix + ":changes",
		eventsCap: strconv.Itoa(opts.EventsCap),
	}, nil
}

// Channel is the pub/sub channel on which every transition is published.
func (s *Store) Channel() string { return s.channel }

// Client is the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Batch is one agent's outcomes for one breaker since its last report.
type Batch struct {
	OK           int64
	Fail         int64
	TrailingFail int64 // failures after the batch's last success
	Slow         int64
	RetryAfter   time.Duration // the largest Retry-After seen; 0 = none
	LastError    string
	// Probe is the traffic-mode probe's result, when this batch carries it.
	Probe *ProbeOutcome
}

// ProbeOutcome is the result of one half-open probe.
type ProbeOutcome struct {
	Epoch      int64
	OK         bool
	Error      string
	RetryAfter time.Duration
	// Token is the fencing token the prober claimed the window with
	// (ProbeStart); empty for a traffic-mode probe, fenced by its permit.
	Token string
}

// Report applies a batch of outcomes to a breaker and trips it when the
// policy says so.
func (s *Store) Report(ctx context.Context, name string, p Policy, actor string, b Batch) (Result, error) {
	if b.OK < 0 || b.Fail < 0 || b.TrailingFail < 0 || b.Slow < 0 || b.RetryAfter < 0 {
		return Result{}, fmt.Errorf("%w: negative count in batch", ErrInvalid)
	}
	if b.TrailingFail > b.Fail {
		b.TrailingFail = b.Fail
	}
	var pe, pok, perr = "0", "0", ""
	if b.Probe != nil && b.Probe.Epoch > 0 {
		pe = strconv.FormatInt(b.Probe.Epoch, 10)
		pok = boolArg(b.Probe.OK)
		perr = b.Probe.Error
		if b.Probe.RetryAfter > b.RetryAfter {
			b.RetryAfter = b.Probe.RetryAfter
		}
	}
	return s.run(ctx, reportScript, name, p, actor,
		strconv.FormatInt(b.OK, 10), strconv.FormatInt(b.Fail, 10),
		strconv.FormatInt(b.TrailingFail, 10), strconv.FormatInt(b.Slow, 10),
		strconv.FormatInt(b.RetryAfter.Milliseconds(), 10), b.LastError,
		pe, pok, perr)
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
// claimed, returns Result.Stale and changes nothing.
func (s *Store) ProbeResult(ctx context.Context, name string, p Policy, actor string, o ProbeOutcome) (Result, error) {
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
// half-open window epoch. It is granted to one caller per window,
// cluster-wide, and only while the breaker is half-open in that epoch.
func (s *Store) AcquirePermit(ctx context.Context, name string, p Policy, agent string, epoch int64) (Result, error) {
	return s.run(ctx, permitScript, name, p, agent, strconv.FormatInt(epoch, 10), agent)
}

func (s *Store) run(ctx context.Context, script *redis.Script, name string, p Policy, actor string, extra ...any) (Result, error) {
	if !ValidName(name) {
		return Result{}, ErrInvalidName
	}
	pargs, err := p.args()
	if err != nil {
		return Result{}, fmt.Errorf("%w: policy: %v", ErrInvalid, err)
	}
	args := make([]any, 0, 4+len(pargs)+len(extra))
	args = append(args, name, s.channel, s.eventsCap, actor)
	args = append(args, pargs...)
	args = append(args, extra...)
	raw, err := script.Run(ctx, s.rdb, s.keys(name), args...).StringSlice()
	if err != nil {
		return Result{}, wrapRedis(ctx, err)
	}
	return parseReply(name, raw)
}

// parseReply maps a script's reply (common.lua) to a Result.
func parseReply(name string, r []string) (Result, error) {
	if len(r) != 15 {
		return Result{}, fmt.Errorf("%w: script reply has %d fields, want 15", ErrUnavailable, len(r))
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
	switch r[0] {
	case codeTransition:
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
	case codeNone:
	default:
		return Result{}, fmt.Errorf("%w: unknown script reply code %q", ErrUnavailable, r[0])
	}
	return res, nil
}

// wrapRedis turns a Redis error into ErrUnavailable, or the context's error
// when the caller gave up.
func wrapRedis(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("statestore: %w", ctx.Err())
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
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
