package agentlib_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/fusebox-io/fusebox/agentlib"
)

func Example() {
	agent, err := agentlib.New(agentlib.Config{
		CoordinatorURL: "http://127.0.0.1:8080",
		RedisURL:       "redis://127.0.0.1:6380",
		Token:          os.Getenv("FUSEBOX_AGENT_TOKEN"), // a token with the agent role
	})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	openai, err := agent.Breaker("openai")
	if err != nil {
		log.Fatal(err)
	}

	// Two-step: Allow, call, report what happened.
	done, err := openai.Allow()
	if err != nil {
		// errors.Is(err, agentlib.ErrOpen), ErrHalfOpen, ErrForcedOpen,
		// ErrDegraded: fall back to the next provider.
		fmt.Println("skip openai:", err)
		return
	}
	resp, err := http.Post("https://api.openai.com/v1/chat/completions", "application/json", nil)
	switch {
	case err != nil:
		done(agentlib.Failure(err))
	case resp.StatusCode == 429 || resp.StatusCode >= 500:
		done(agentlib.Failure(fmt.Errorf("HTTP %d", resp.StatusCode)))
	case resp.StatusCode >= 400:
		done(agentlib.Ignored()) // our request was bad, the provider is fine
	default:
		done(agentlib.Success())
	}

	// Or let Execute classify the error.
	err = openai.Execute(context.Background(), func(ctx context.Context) error {
		return nil // call the provider here
	})
	if errors.Is(err, agentlib.ErrOpen) {
		fmt.Println("openai is down for the whole cluster")
	}
}
