package agentlib

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/report"
)

// flushLoop sends pending outcomes every FlushInterval, at once after a
// failure, a hung call or a probe verdict (coalesced: one report carries
// every failure that arrived while the previous one was in flight, and
// every success pending), and a heartbeat every ResyncInterval.
// It owns the report path; on stop it sends what is pending, once.
func (a *Agent) flushLoop() {
	ticker := time.NewTicker(a.cfg.FlushInterval)
	defer ticker.Stop()
	var lastSent time.Time
	for {
		final := false
		select {
		case <-a.flushStop:
			final = true
		case <-a.urgent:
		case <-ticker.C:
		}
		heartbeatDue := time.Since(lastSent) >= a.cfg.ResyncInterval
		if a.degraded.Load() {
			// Outcomes are the local breakers' business now; only find out
			// whether the coordinator answers again.
			if heartbeatDue && !final {
				a.sendReport(a.newReport(true))
				lastSent = time.Now()
			}
		} else {
			rep := a.collect()
			if len(rep.Breakers) > 0 || len(rep.Routes) > 0 || (heartbeatDue && !final) {
				a.sendReport(rep)
				lastSent = time.Now()
			}
		}
		if final {
			return
		}
	}
}

// newReport starts the next report: the next seq of this boot, with what
// the routes served since the last one.
func (a *Agent) newReport(degraded bool) report.Report {
	a.seq++
	return report.Report{Agent: a.cfg.AgentID, Service: a.cfg.Service, Boot: a.boot, Seq: a.seq, Degraded: degraded,
		Breakers: []report.Breaker{}, Routes: a.served.take()}
}

func (a *Agent) collect() report.Report {
	rep := a.newReport(false)
	now := a.tick.Load()
	for _, b := range a.breakerList() {
		if e, ok := b.take(now); ok {
			rep.Breakers = append(rep.Breakers, e)
		}
	}
	return rep
}

// sendReport posts a report, trying each coordinator once with the same
// body (the same seq: a coordinator that applied it before its answer was
// lost recognises the repeat), and applies the states in the answer.
func (a *Agent) sendReport(rep report.Report) {
	body, err := json.Marshal(rep)
	if err != nil {
		a.log.Error().Err(err).Msg("encode report")
		return
	}
	var lastErr error
	for range a.coords {
		idx := a.coordIdx.Load()
		base := a.coords[int(idx)%len(a.coords)]
		resp, err := a.post(base, body)
		if err == nil {
			for _, s := range resp.Breakers {
				if b := a.lookup(s.Name); b != nil {
					b.apply(s.Snapshot, nil, false)
					if s.LocalOpenMS > 0 {
						b.setLocalOpen(time.Duration(s.LocalOpenMS) * time.Millisecond)
					}
				}
			}
			a.setCoordinator(true, false, nil)
			return
		}
		var bad *badReportError
		if errors.As(err, &bad) {
			// The coordinator understood and refused: a bug, not an outage.
			a.log.Error().Err(err).Msg("coordinator refused a report")
			return
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			a.setCoordinator(false, true, err)
			return
		}
		lastErr = err
		a.coordIdx.CompareAndSwap(idx, idx+1)
	}
	a.setCoordinator(false, false, lastErr)
}

// refusedError: the coordinator refused this agent's token.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

type badReportError struct {
	status int
	detail string
}

func (e *badReportError) Error() string {
	return fmt.Sprintf("coordinator answered %d: %s", e.status, e.detail)
}

func (a *Agent) post(base string, body []byte) (report.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/reports", bytes.NewReader(body))
	if err != nil {
		return report.Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return report.Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return report.Response{}, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Not an outage, but the cluster cannot hear us: run on local
		// breakers, and say why loudly.
		a.log.Error().Int("status", resp.StatusCode).Str("coordinator", logging.RedactURL(base)).
			Msg("the coordinator refused this agent's token: set Config.Token to a token with the agent role")
		return report.Response{}, &refusedError{fmt.Sprintf("coordinator %s refused the token (%d)", logging.RedactURL(base), resp.StatusCode)}
	case resp.StatusCode == http.StatusTooManyRequests:
		// The coordinators' registration limit: this agent registered as
		// many breakers as it may (or the registry is full). Not an
		// outage: the report is dropped, loudly, and the agent stays on
		// the cluster.
		return report.Response{}, &badReportError{status: resp.StatusCode, detail: string(bytes.TrimSpace(data[:min(len(data), 300)]))}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout:
		return report.Response{}, &badReportError{status: resp.StatusCode, detail: string(bytes.TrimSpace(data[:min(len(data), 300)]))}
	default:
		return report.Response{}, fmt.Errorf("coordinator %s answered %d", logging.RedactURL(base), resp.StatusCode)
	}
	var out report.Response
	if err := json.Unmarshal(data, &out); err != nil {
		return report.Response{}, fmt.Errorf("coordinator %s: bad answer: %w", logging.RedactURL(base), err)
	}
	return out, nil
}
