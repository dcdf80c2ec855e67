# Two commands: `make demo` and `make test`. Both set up what they need on a fresh machine.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTENV := $(VENV)/.test-installed
PEERS   := tests/peers/node_modules/.installed
APT_PACKAGES := mosquitto victoria-metrics influxdb socat nginx-light chromium chromium-driver fonts-noto-cjk

.PHONY: demo test screenshots lint bench docs system-deps clean wheelhouse

demo: $(RUNTIME)
	$(BIN)/edge-agent demo

test: $(TESTENV) system-deps $(PEERS)
	$(BIN)/pytest -q

# The README's screenshots of the local page, taken anew by the browser tests.
screenshots: $(TESTENV) system-deps $(PEERS)
	EDGE_AGENT_KEEP_SCREENSHOTS=1 $(BIN)/pytest -q tests/web

lint: $(TESTENV)
	$(BIN)/ruff check edge_agent drivers tests
	$(BIN)/ruff format --check edge_agent drivers
	$(BIN)/python -m mypy edge_agent drivers

docs: $(RUNTIME)
	$(BIN)/python -m edge_agent.docs README.md

# CPU, memory and latency of the agent at 1k..100k values/s beside Node-RED, then the OPC UA
# table (tests/bench/bench_cpu.py, about 18 min); BENCH_ARGS=--quick checks the script in 3 min.
bench: $(TESTENV) system-deps tests/bench/nodered/node_modules/.installed
	$(BIN)/python -m tests.bench.bench_cpu $(BENCH_ARGS)

# Node-RED and node-red-contrib-modbus for the benchmark, from npm only (serialport, optional,
# left out). If npm fails, make goes on and the benchmark says that it left Node-RED out.
tests/bench/nodered/node_modules/.installed: tests/bench/nodered/package.json tests/bench/nodered/package-lock.json
	-cd tests/bench/nodered && npm ci --omit=optional --no-audit --no-fund --loglevel=error && touch node_modules/.installed

# Offline install archives (README "Offline install"), one per Python in WHEEL_PYTHONS, in
# $(DIST)/: the agent's wheel with every runtime dependency resolved for that Python and this
# machine's architecture, pip itself (so install.sh needs no ensurepip, which Debian leaves out
# without python3-venv), install.sh, the unit, env.example, a sample configuration, BUILD-INFO and
# SHA256SUMS. The build machine's own Python gets `pip wheel` (which also builds sdists); another
# takes binary wheels only, plus the pure-Python wheels of the first build (any sdist-only
# dependency built there), so nothing is compiled for an interpreter that is not here. Binary
# wheels are those for this machine's glibc or older: build on the plant PC's OS release or an
# older one. setuptools' build/ goes first: files it kept from an earlier build would ship in the
# wheel even after they left the source. Needs PyPI.
WHEEL_PYTHONS ?= 3.11 3.12
DIST          ?= dist
WHEEL_ARCH    := $(shell uname -m)

wheelhouse: | $(VENV)/bin/python
	@set -eu; \
	host=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	version=$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])'); \
	pip_version=$$($(BIN)/python -c 'import pip; print(pip.__version__)'); \
	glibc=$$(getconf GNU_LIBC_VERSION | cut -d' ' -f2); \
	platforms=""; \
	for minor in $$(seq "$${glibc#2.}" -1 5); do platforms="$$platforms --platform manylinux_2_$${minor}_$(WHEEL_ARCH)"; done; \
	platforms="$$platforms --platform manylinux2014_$(WHEEL_ARCH) --platform manylinux2010_$(WHEEL_ARCH) --platform manylinux1_$(WHEEL_ARCH)"; \
	mkdir -p "$(DIST)"; dist=$$(cd "$(DIST)" && pwd); \
	work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	echo "wheelhouse: edge-agent $$version for Python $(WHEEL_PYTHONS) on $(WHEEL_ARCH), binary wheels for glibc $$glibc or older"; \
	rm -rf build; \
	$(BIN)/pip wheel -q --disable-pip-version-check -w "$$work/host" .; \
	mkdir "$$work/pure"; cp "$$work"/host/*-none-any.whl "$$work/pure/"; \
	for py in $(WHEEL_PYTHONS); do \
	  name=edge-agent-$$version-py$$py-linux_$(WHEEL_ARCH); dir=$$work/$$name; \
	  mkdir -p "$$dir/wheels"; \
	  if [ "$$py" = "$$host" ]; then \
	    cp "$$work"/host/*.whl "$$dir/wheels/"; \
	  else \
	    $(BIN)/pip download -q --disable-pip-version-check --only-binary=:all: \
	      --python-version "$$py" --implementation cp --abi "cp$$(echo "$$py" | tr -d .)" $$platforms \
	      --find-links "$$work/pure" -d "$$dir/wheels" "$$work"/host/edge_agent-*.whl; \
	  fi; \
	  $(BIN)/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
	    -d "$$dir/wheels" "pip==$$pip_version"; \
	  install -m 755 deploy/install.sh "$$dir/install.sh"; \
	  install -m 644 deploy/edge-agent.service deploy/env.example "$$dir/"; \
	  install -m 644 configs/example-modbus-rtu.yaml "$$dir/agent.yaml.example"; \
	  printf 'name=edge-agent\nversion=%s\npython=%s\narch=%s\nbuilt_on_glibc=%s\nbuilt=%s\n' \
	    "$$version" "$$py" "$(WHEEL_ARCH)" "$$glibc" "$$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$$dir/BUILD-INFO"; \
	  (cd "$$dir" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
	    | xargs sha256sum > SHA256SUMS); \
	  tar -C "$$work" --sort=name --owner=0 --group=0 --numeric-owner \
	    -czf "$$dist/$$name-wheelhouse.tar.gz" "$$name"; \
	  echo "  $(DIST)/$$name-wheelhouse.tar.gz: $$(ls "$$dir/wheels" | wc -l) wheels, $$(du -h "$$dist/$$name-wheelhouse.tar.gz" | cut -f1)"; \
	done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(TESTENV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(RUNTIME) $@

# mosquitto (MQTT broker), VictoriaMetrics (speaks the InfluxDB v2 write API), InfluxDB 1.x
# (the v1 API and InfluxQL, as many plants still run it), socat (virtual
# serial lines for Modbus RTU), nginx (a proxy that refuses large batches with 413), Chromium with
# its driver and CJK fonts (the page tested in a real browser, in English and Chinese) and Node.js
# (independent protocol peers), from Debian.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing packages:$$missing; run as root or: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

$(PEERS): tests/peers/package.json tests/peers/package-lock.json tests/peers/sparkplug/package.json tests/peers/sparkplug/package-lock.json
	cd tests/peers && npm ci --omit=optional --no-audit --no-fund --loglevel=error
	cd tests/peers/sparkplug && npm ci --omit=optional --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) tests/peers/node_modules var .pytest_cache
