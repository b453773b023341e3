# The two commands of the README are `make demo` and `make test`; both set up first.
SHELL := /bin/bash
VENV := .venv
ETL := $(VENV)/bin/etl
CONFIG ?= conf/demo.yaml

# Python workers must run the venv's interpreter (pandas UDFs need pyarrow), and Spark
# binds to loopback. Local-stack S3 credentials, only where the environment has none.
export PYSPARK_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(VENV)/bin/python
export SPARK_LOCAL_IP := 127.0.0.1
export AWS_ACCESS_KEY_ID ?= etl-local
export AWS_SECRET_ACCESS_KEY ?= etl-local-secret
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup stack-up stack-down test lint demo clean bench-preprocess bench-train bench-tick \
	bench-export bench-judging bench-robustness image pipeline

setup:
	@bash scripts/setup.sh

stack-up: setup
	$(ETL) --config $(CONFIG) stack up

stack-down:
	$(ETL) --config $(CONFIG) stack down

lint: setup
	$(VENV)/bin/ruff check etl jobs tests bench scripts
	$(VENV)/bin/ruff format --check etl jobs tests

test: setup
	$(ETL) --config conf/demo.yaml stack up
	$(VENV)/bin/ruff check etl jobs tests bench scripts
	$(VENV)/bin/python -m pytest -q

demo: setup
	bash scripts/demo.sh $(CONFIG)

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info spark-warehouse

# Raw rows/s of `etl preprocess` next to a single-process pandas baseline, same run.
bench-preprocess: setup
	$(VENV)/bin/python bench/preprocess.py --machines 10 --days $(or $(DAYS),1)

bench-train: stack-up
	$(VENV)/bin/python bench/train.py --sizes $(or $(SIZES),3,6,12) --days $(or $(DAYS),1) \
		--modes $(or $(MODES),sampled,full)

# One `etl run` tick for one 10-minute wave of a fleet (after a first tick that trains).
# models trained on day 1, judged on the next hours: later, noisier GNSS, other mounting
bench-robustness: setup
	$(VENV)/bin/python bench/robustness.py --machines $(or $(MACHINES),6) --hours $(or $(HOURS),6)

bench-tick: stack-up
	$(VENV)/bin/python bench/tick.py --machines $(or $(MACHINES),50) --hours $(or $(HOURS),2)

# Rows/s of the export (read, adapt, check, JDBC load) into the stack's PostgreSQL.
bench-export: stack-up
	$(VENV)/bin/python bench/export.py --segments 200000 --cycles 20000 --machines 20

# Judging "enough data" from a Kafka history of fleet size (500 machines x 14 days: ~1 M
# announcements): per machine as before, once, and incrementally (docs/benchmarks.md).
bench-judging: stack-up
	$(VENV)/bin/python bench/judging.py --machines $(or $(MACHINES),500) --days $(or $(DAYS),14)

# The Spark image for Kubernetes (needs a Docker engine; the tests check its context).
IMAGE ?= fleet-etl:dev
image:
	docker build -t $(IMAGE) .

# Kubernetes manifests (deploy/k8s/) and the Kubeflow pipeline (deploy/pipeline.yaml), generated
# from one config and checked in; the unit tests fail when they are stale.
DEPLOY_CONFIG ?= conf/prod.example.yaml
pipeline: setup
	$(VENV)/bin/python -m etl.deploy manifests --config $(DEPLOY_CONFIG) --out deploy/k8s
	$(VENV)/bin/python -m etl.deploy pipeline --config $(DEPLOY_CONFIG) --out deploy/pipeline.yaml
