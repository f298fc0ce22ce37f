GO ?= go

.PHONY: test test-integration bench lint tidy-check deps

# The one test command: installs what it needs, vets, runs every test with
# the race detector.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

deps:
	@./scripts/ensure-redis.sh
	@./scripts/ensure-chromium.sh

# Every comparison in one run, about 5 minutes on 2 cores (docs/benchmarks.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./agentlib
	$(GO) test -run '^$$' -bench PerCall -benchmem ./bench
	$(GO) test -run '^$$' -bench Outage -benchtime 1x ./bench
	$(GO) run ./cmd/outagesim -scale 10

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum
