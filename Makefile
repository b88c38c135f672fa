# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is installed here, pinned by uv.lock.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := .uv/bin/uv
PY := .venv/bin/python

.PHONY: demo test env spark browser lint serve clean

demo: env
	.venv/bin/yilian demo

serve: env
	.venv/bin/yilian serve

test: env spark browser
	bash scripts/test

env: .venv/.synced

$(UV):
	python3 -m venv .uv
	.uv/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --inexact --python python3
	touch $@

# The test suite also runs the indicator and view engines on local PySpark (the `spark` extra, ~300 MB): only
# `make test` installs it, so `make demo` stays light. --inexact: neither sync removes what the other added.
spark: .venv/.spark
.venv/.spark: .venv/.synced
	UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --inexact --all-extras --python python3
	touch $@

# Browser tests drive Debian's Chromium (never a downloaded browser); CJK fonts so that pages render Chinese.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

lint: env
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports

clean:
	rm -rf .venv .uv var .pytest_cache .mypy_cache .ruff_cache
