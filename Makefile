# The two commands a newcomer types: `make run` and `make test`.
# Everything else is a convenience for developers.
BUILD ?= build
CONF ?= etc/danerelay.conf

.PHONY: all deps build run test test-fresh test-unit fuzz bench clean deb format

all: build

# Build and run dependencies only: never an MTA or a DNS server (the test
# world's peers come with `make test`, through scripts/deps.sh test).
deps:
	@scripts/deps.sh run

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	mkdir -p var
	@# As root, serve drops to run_user (danerelay); create it like a package would.
	@scripts/ensure-run-user.sh >/dev/null
	./$(BUILD)/danerelay serve -c $(CONF)

test:
	@scripts/test.sh

# make test as on a fresh machine: first undo what earlier runs left (test
# worlds and their processes, /tmp/danerelay-* directories, loopback aliases,
# the danerelay user, build directories). Machine-wide: it also stops test
# runs in progress. DRY_RUN=1 only prints what it would undo.
test-fresh:
	@scripts/test-fresh.sh $(if $(DRY_RUN),--dry-run)

# Unit suites only, gcc build: the quick loop while editing.
test-unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

# Reliability and hostile-input suite, full run (tests/reliability/):
# 10,000 messages with kill -9, faulty MX/DNS, disk full, hostile clients, run
# on the gcc build and the ASan+UBSan build. Needs root. WORLD_NET picks the
# world's 127.NET.x.y addresses (default 0).
test-reliability: build
	@scripts/deps.sh test
	tests/reliability/test_reliability.sh --full $(BUILD)/danerelay
	[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
	ninja -C build-asan danerelay
	tests/reliability/test_reliability.sh --full build-asan/danerelay

# Rewrite the C sources in place with .clang-format (make test checks them).
format:
	@scripts/check-format.sh --fix

fuzz:
	scripts/fuzz-smoke.sh $${FUZZ_SECONDS:-600}

# Benchmarks against Postfix in the test world (root; see BENCHMARKS.md).
# make bench [N=10000] [QUICK=1] [BACKLOG_N=100000] [SLOWLANE=0] [KILLS=0]
bench: build
	@scripts/deps.sh test
	$(if $(N),N=$(N)) $(if $(QUICK),QUICK=$(QUICK)) $(if $(BACKLOG_N),BACKLOG_N=$(BACKLOG_N)) \
	  $(if $(SLOWLANE),SLOWLANE=$(SLOWLANE)) $(if $(KILLS),KILLS=$(KILLS)) \
	  bench/run.sh $(BUILD)/danerelay

# Debian package: installs debian/control's Build-Depends, then builds
# ../danerelay_<version>_<arch>.deb beside the source tree (unsigned).
# The suites run under `make test`; `make deb DEB_BUILD_OPTIONS=` also runs
# the unit suite inside the package build.
DEB_BUILD_OPTIONS ?= nocheck parallel=2
deb:
	@scripts/deps.sh deb
	DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b

clean:
	rm -rf build build-asan build-fuzz build-results var
