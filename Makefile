# lifeboat — build, test, demo. `make test` and `make demo` install what
# they need themselves (deploy/deps.sh), so both work on a fresh machine.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/lifeboat
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
export GOFLAGS := -buildvcs=false
# The workload init (cmd/lifeboat-init): C and static, as small as CRIU's
# images of it should be (docs/ARCHITECTURE.md, "The workload init").
INIT_CFLAGS := -static -Os -s -Wall -Wextra -Werror

.PHONY: all build deps test test-short demo lint bench jepsen clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/lifeboat
	$(GO) build -o bin/counter ./examples/counter
	@command -v $(CC) >/dev/null 2>&1 || { echo "make build: no C compiler ($(CC)) for bin/lifeboat-init; make deps installs gcc" >&2; exit 1; }
	$(CC) $(INIT_CFLAGS) -o bin/lifeboat-init cmd/lifeboat-init/lifeboat-init.c

deps:
	@bash deploy/deps.sh

# The full suite, race detector on; process-level tests use bin/lifeboat.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 40m ./...

test-short: build
	$(GO) test -race -short -count=1 ./...

demo: deps build
	$(BIN) demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: deps build
	bash deploy/bench.sh

# The full Jepsen suite (tens of minutes): every nemesis alone, mixed, and
# the negative control; summary and failing runs' histories in jepsen-out/.
jepsen: deps build
	$(GO) test -count=1 -timeout 90m -v -run TestJepsen ./jepsen/ -args -jepsen.full -jepsen.out $(CURDIR)/jepsen-out

clean:
	rm -rf bin
