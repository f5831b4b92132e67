# StreamPulse — the two commands a newcomer needs:
#   make demo   installs what is missing, builds, and runs demo cameras + monitor + web on loopback
#   make test   installs what is missing, builds, and runs every test
SHELL := /bin/bash
CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian 12 packages: build (dev headers, pkg-config), runtime plugins the probe templates use,
# the RTSP server library (demo cameras, tests), ffmpeg (benchmark baseline), chromium (browser tests),
# python3-aiosmtpd (the SMTP sink of the email channel's tests), mosquitto (the MQTT broker
# tests/mqtt.rs starts on loopback; mosquitto_passwd comes with it), linux-perf (`make bench` counts
# the threads the monitor creates per probe with it).
APT_PACKAGES := pkg-config build-essential \
	libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools \
	ffmpeg chromium python3-aiosmtpd mosquitto linux-perf

.PHONY: deps build release test test-e2e lint run demo bench bench-web soak clean

## deps: install the Debian packages above that are missing (idempotent; no-op when all present)
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done; \
	  command -v node >/dev/null || echo nodejs; command -v npm >/dev/null || echo npm); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "deps: all Debian packages present"; fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run"; exit 1; }
	@# promtool checks the shipped alert rules (tests/prometheus_files.rs). Unpacked from Debian's
	@# prometheus package, not installed: that would start a Prometheus server on this machine.
	@[ -x target/tools/prometheus/usr/bin/promtool ] || { mkdir -p target/tools && cd target/tools && \
	  apt-get download prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb prometheus && rm -f prometheus_*.deb && \
	  echo "deps: promtool unpacked to target/tools"; } || echo "deps: promtool unavailable; the rules are checked without it"

build: deps
	$(CARGO) build --locked

release: deps
	$(CARGO) build --locked --release

# The tests run with GLib criticals fatal: a failed library assertion (like issue 9's RTSP
# server spin) aborts the test binary or the e2e demo instead of passing silently. Tests only:
# `make demo` and `make run` keep GLib's default.
test test-e2e: export G_DEBUG := fatal-criticals

## test: formatting and clippy, then every test — unit, integration (real GStreamer, SQLite,
## loopback servers), browser
test: deps lint
	$(CARGO) test --locked --lib --bins --tests -- --test-threads=2
	$(MAKE) --no-print-directory test-e2e

## test-e2e: the web UI end to end in Debian's headless Chromium against `streampulse demo`
## on loopback; screenshots of every step in target/e2e/
test-e2e: deps tests/e2e/node_modules/.installed
	$(CARGO) build --locked
	node tests/e2e/run.mjs

# playwright-core only (it downloads no browser), as pinned by the lock; again when the lock changes.
tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e --ignore-scripts --no-audit --no-fund
	touch $@

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## run: the monitor on the repository's config.yaml (its cameras come from `streampulse demo`)
run: build
	$(CARGO) run --locked -- monitor --config config.yaml

## demo: demo cameras, monitor and web server on loopback with a throw-away database
demo: release
	./target/release/streampulse demo

## bench: probe cost and schedule lag against a local RTSP server, with ffmpeg as baseline
bench: release
	$(CARGO) bench --locked --bench fleet

## bench-web: dashboard, API and stream pages over a 1,000-stream, 7-day (40 M heartbeats) database
## it builds once in target/bench-web/ (about 2 GB; BENCH_WEB_REBUILD=1 builds it again)
bench-web: deps
	$(CARGO) bench --locked --bench web

## soak: 200 streams (good, flapping, silent, broken, frozen) at a 5 s heartbeat with the web
## loaded every second; RSS, threads, fds and DB size every minute; fails if RSS grows >= 5% after
## warm-up, threads or fds climb, or a due heartbeat is missing. Report in target/soak-report.md.
## Knobs: SOAK_MINUTES=10 (README figures: 60), SOAK_STREAMS=200, SOAK_HEARTBEAT_SECONDS=5,
## SOAK_SAMPLE_SECONDS=60, SOAK_WARMUP_SECONDS (default max(120, 20% of the run)); a 2-minute smoke:
## SOAK_MINUTES=2 SOAK_SAMPLE_SECONDS=20 SOAK_WARMUP_SECONDS=40 make soak
soak: release
	$(CARGO) bench --locked --bench soak

clean:
	$(CARGO) clean

# Debian package: deb, test-deb, deb-arm64, deb-armhf (packaging/README.md)
include packaging/deb.mk
