# Quant Workbench: every target creates .venv on first use (torch CPU build first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5006

.PHONY: setup report report-quick test test-fast lab app viewer explorer dashboard bench bench-quick bench-inference bench-live bench-tuning lint clean-venv

$(STAMP): pyproject.toml tools/system-deps.sh
	bash tools/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)  ## the environment alone, in .venv

report: setup  ## main job: research report on the bundled real data -> reports/output/<run>/
	$(BIN)/workbench report $(REPORT_ARGS)

report-quick: setup  ## tiny settings (smoke run)
	$(BIN)/workbench report --quick $(REPORT_ARGS)

test: setup  ## unit tests + notebooks (nbval) + a tiny report run
	WORKBENCH_SMALL=1 WORKBENCH_DATA_DIR=$$(mktemp -d) $(BIN)/python -m pytest tests --nbval-lax notebooks $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow and not notebooks" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lab: setup  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks

app: setup  ## live trading app (paper engine on a replay of the bundled data), on loopback
	$(BIN)/python -m widgets.serve live_app --address 127.0.0.1 --port $(PORT)

viewer: setup  ## Panel backtest viewer over the report runs
	$(BIN)/python -m widgets.serve backtest_viewer --port $(PORT) --address 127.0.0.1

explorer: setup  ## Panel feature explorer on the bundled daily universe
	$(BIN)/python -m widgets.serve feature_explorer --port $(PORT) --address 127.0.0.1

dashboard: setup  ## Panel tuning dashboard (demo study unless WORKBENCH_TUNING_STORAGE/_STUDY are set)
	$(BIN)/python -m widgets.serve tuning_dashboard --port $(PORT) --address 127.0.0.1

bench: setup  ## feature-engine benchmark -> benchmarks/results/features.json
	$(BIN)/python benchmarks/bench_features.py $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python benchmarks/bench_features.py --quick

bench-inference: setup  ## ensemble inference benchmark -> benchmarks/results/inference.json
	$(BIN)/python benchmarks/bench_inference.py $(BENCH_ARGS)

bench-live: setup  ## live engine latency, throughput, browser and soak -> benchmarks/results/live.json
	$(BIN)/python benchmarks/bench_live.py --browser $(BENCH_ARGS)

bench-tuning: setup  ## worker scaling and storage overhead -> benchmarks/results/tuning.json
	$(BIN)/python benchmarks/bench_tuning.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check workbench widgets tests benchmarks tools
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)
