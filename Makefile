# Two commands: `make run` and `make test`. Each builds .venv on first use; make test also
# installs the packages its tests drive for real (.ci/packages).
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test lint bench demo-logs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m audittui --demo

test: $(STAMP)
	.ci/packages
	$(PY) -m ruff check audittui tests bench
	$(PY) -m ruff format --check audittui tests bench
	$(PY) -m mypy audittui
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check audittui tests bench
	$(PY) -m ruff format --check audittui tests bench
	$(PY) -m mypy audittui

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/bench_load.py
	$(PY) bench/bench_match.py
	$(PY) bench/bench_scale.py
	$(PY) bench/bench_policy.py
	$(PY) bench/bench_tui.py --file bench/data/realistic-1000000.log

demo-logs: $(STAMP)
	$(PY) -m audittui.demo write demo-logs --events 3000 --seed 7

clean:
	rm -rf .venv build *.egg-info
