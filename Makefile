# Two commands: `make demo` and `make test`. Both set up what they need on a fresh machine.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTENV := $(VENV)/.test-installed
PEERS   := tests/peers/node_modules/.installed
APT_PACKAGES := mosquitto victoria-metrics influxdb socat nginx-light chromium chromium-driver fonts-noto-cjk

.PHONY: demo test screenshots lint bench docs system-deps clean

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

$(PEERS): tests/peers/package.json tests/peers/package-lock.json
	cd tests/peers && npm ci --omit=optional --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) tests/peers/node_modules var .pytest_cache
