GO ?= go

.PHONY: test test-unit test-integration images bench lint tidy-check deps

# The one test command: installs what it needs (redis-server, chromium,
# nginx), builds the images, vets, runs every test with the race detector,
# then the container suites.
test: test-unit test-integration

test-unit: deps
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration
	$(GO) test -race -count=1 ./...

# Container images from this machine's files alone (no registry needed).
images:
	./scripts/build-images.sh

# The container suites: Redis, coordinators, sidecars and the fake provider
# on private networks (testcontainers-go), from locally built images.
test-integration: deps images
	$(GO) test -tags integration -count=1 -timeout 18m -v ./integration

deps:
	@./scripts/ensure-redis.sh
	@./scripts/ensure-chromium.sh
	@./scripts/ensure-nginx.sh

# Every comparison in one run, about 11 minutes on 2 cores (docs/benchmarks.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./agentlib
	$(GO) test -run '^$$' -bench PerCall -benchmem ./bench
	$(GO) test -run '^$$' -bench Outage -benchtime 1x ./bench
	$(GO) test -run '^$$' -bench Fleet -benchtime 1x -timeout 20m ./bench
	$(GO) test -run '^$$' -bench Registry -benchtime 1x ./bench
	$(GO) test -run '^$$' -bench Fanout -benchtime 1x ./bench
	$(GO) test -run '^$$' -bench 'Request|Serve' -benchmem ./sidecar
	$(GO) test -run '^$$' -bench Proxy -benchtime 1x ./bench
	$(GO) test -run '^$$' -bench SeedScenario -benchtime 1x -timeout 20m ./bench

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum
