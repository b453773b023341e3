#!/usr/bin/env bash
# make setup: everything this repository needs on a fresh Debian machine, idempotent.
#   1. .venv with the exact pins of requirements.lock, and this package (.venv/bin/etl)
#   2. the JVM jars of jvm/*/pom.xml, resolved by Maven into jars/ (ignored), and a
#      class-data archive of a local Spark session's JVM (jars/spark-classes.jsa)
#   3. Debian's PostgreSQL server and Prometheus Pushgateway, when missing
# Each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stamp_dir=.venv/.stamps
py=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. Python ---------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
mkdir -p "$stamp_dir"
want=$(hash_of requirements.lock pyproject.toml)
if [ "$(cat "$stamp_dir/python" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages (pyspark builds from source once; pip caches the wheel)"
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp_dir/python"
else
  say "Python packages up to date"
fi

# 2. JVM jars -------------------------------------------------------------------------
for kind in spark kafka; do
  want=$(hash_of "jvm/$kind/pom.xml")
  if [ "$(cat "jars/$kind/.stamp" 2>/dev/null)" != "$want" ]; then
    say "resolving jars/$kind with Maven (jvm/$kind/pom.xml)"
    rm -rf "jars/$kind"
    mkdir -p "jars/$kind"
    mvn -q -B -f "jvm/$kind/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$root/jars/$kind"
    echo "$want" > "jars/$kind/.stamp"
  else
    say "jars/$kind up to date"
  fi
done

# 2b. The JVM class-data archive local Spark sessions map (~5 s off each start) ----------
want=$({ cat jars/spark/.stamp requirements.lock scripts/class_archive.py; java -version 2>&1; } \
  | sha256sum | cut -c1-16)
if [ "$(cat jars/.class-archive.stamp 2>/dev/null)" != "$want" ]; then
  say "archiving the JVM classes of a local Spark session (scripts/class_archive.py)"
  if .venv/bin/python scripts/class_archive.py >/dev/null 2>.venv/class-archive.log; then
    echo "$want" > jars/.class-archive.stamp
  else
    say "WARNING: no class archive (local sessions start ~5 s slower): .venv/class-archive.log"
  fi
else
  say "class archive up to date"
fi

# 3. Debian packages: PostgreSQL's server, and the Prometheus Pushgateway that the metrics
#    tests push to (both started by our own code, never as Debian services) ------------
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/prometheus-pushgateway ] || missing+=(prometheus-pushgateway)
if [ ${#missing[@]} -gt 0 ]; then
  export PATH="$PATH:/usr/sbin:/sbin"
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts services of its own (a cluster on 5432, a gateway on 9091); the stack
    # and the tests run their own, so stop them.
    service postgresql stop >/dev/null 2>&1 || true
    service prometheus-pushgateway stop >/dev/null 2>&1 || true
  else
    echo "[setup] missing Debian packages: run 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
  fi
else
  say "Debian packages present (PostgreSQL $(ls -d /usr/lib/postgresql/*/ | tail -1), pushgateway)"
fi
say "done"
