# Debian package targets. Included by the top-level Makefile; also works alone:
#   make -f packaging/deb.mk deb        # target/debian/streampulse_<version>_amd64.deb
#   make -f packaging/deb.mk test-deb   # build, lintian, install, upgrade, remove, purge (as root)
#   make -f packaging/deb.mk deb-arm64  # cross-build for Raspberry Pi OS 64-bit / Debian arm64
#   make -f packaging/deb.mk deb-armhf  # cross-build for Raspberry Pi OS 32-bit (Pi 2 and later)
# The build dependencies (GStreamer -dev packages, pkg-config, a C compiler) come from the
# top-level `make deps`. What the package contains and how it was tested: packaging/README.md.

# Included or alone? (Read before anything else is included.) Being included must not change
# the including Makefile's default goal; alone, the default goal is `deb`.
DEB_MK_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),yes)
DEB_MK_PREVIOUS_GOAL := $(.DEFAULT_GOAL)
# The repository root, whichever directory make was started from.
DEB_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)

SHELL := /bin/bash
CARGO ?= cargo
# cargo-deb is pinned: its generated maintainer scripts are part of what we test.
CARGO_DEB_VERSION ?= 3.8.0
# Where the .deb files go (cargo-deb's default for the host build).
DEB_OUT ?= target/debian
# Extra arguments for `cargo deb`, e.g. DEB_FLAGS=--deb-revision=2
DEB_FLAGS ?=

DEB_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deb deb-tools deb-arm64 deb-armhf deb-cross-clean test-deb

## deb-tools: cargo-deb (pinned) and lintian, installed only when missing
deb-tools:
	@if [ "$$($(CARGO) deb --version 2>/dev/null)" != "cargo-deb $(CARGO_DEB_VERSION)" ]; then \
	  echo "installing cargo-deb $(CARGO_DEB_VERSION)"; \
	  $(CARGO) install cargo-deb --version $(CARGO_DEB_VERSION) --locked; \
	fi
	@missing=$$(for p in lintian dpkg-dev; do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(DEB_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(DEB_SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## deb: release build and the amd64 (host) package in target/debian/
deb: deb-tools
	cd "$(DEB_ROOT)" && $(CARGO) deb --locked --output "$(DEB_OUT)" $(DEB_FLAGS)

## test-deb: the package's CI test (root; no systemd needed): packaging/test-deb.sh
test-deb: deb
	cd "$(DEB_ROOT)" && DEB_OUT="$(DEB_OUT)" CARGO="$(CARGO)" bash packaging/test-deb.sh

# --- Cross builds for the Raspberry Pi -------------------------------------------------------
# As root on Debian 12 amd64: packaging/cross-deb.sh builds in a Debian chroot of its own
# (/var/tmp/streampulse-cross-<arch>, made on first use, about 2 GB), because the arm64/armhf
# GStreamer -dev packages would replace the host's. On a Pi or any arm64/armhf Debian, plain
# `make deb` builds natively instead (the way for ARMv6 boards: Pi 1, Zero).
deb-arm64 deb-armhf: deb-tools
	cd "$(DEB_ROOT)" && CARGO="$(CARGO)" DEB_OUT="$(DEB_OUT)" DEB_FLAGS="$(DEB_FLAGS)" \
	  bash packaging/cross-deb.sh $(patsubst deb-%,%,$@)

## deb-cross-clean: delete the cross-build chroots
deb-cross-clean:
	$(DEB_SUDO) rm -rf --one-file-system /var/tmp/streampulse-cross-arm64 /var/tmp/streampulse-cross-armhf

ifdef DEB_MK_STANDALONE
.DEFAULT_GOAL := deb
else
.DEFAULT_GOAL := $(DEB_MK_PREVIOUS_GOAL)
endif
