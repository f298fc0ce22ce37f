package statestore

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Dial makes a Redis client from a URL. It does no I/O.
//
//	redis://[user:pass@]host:port[/db]       one server (AUTH from the URL)
//	rediss://…                               the same over TLS
//	redis+sentinel://[user:pass@]host:port?master_name=mymaster[&addr=host:port…]
//	                                         Sentinel (TLS: rediss+sentinel://)
//	redis+cluster://host:port[?addr=host:port…]
//	                                         Redis Cluster (TLS: rediss+cluster://)
//
// Query parameters are go-redis's (dial_timeout, read_timeout, pool_size,
// …); an unknown one is an error.
func Dial(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("statestore: redis url: %w", err)
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("statestore: redis url: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", u.Scheme)
	}
	u.Scheme = base
	switch mode {
	case "":
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("statestore: redis url: %w", err)
		}
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("statestore: redis url: %w", err)
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("statestore: redis url: sentinel needs ?master_name=")
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("statestore: redis url: %w", err)
		}
		return redis.NewClusterClient(o), nil
	default:
		return nil, fmt.Errorf("statestore: redis url: scheme %q: want redis, rediss, redis+sentinel or redis+cluster", u.Scheme)
	}
}
