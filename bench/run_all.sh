#!/usr/bin/env bash
# Every benchmark once, one after the other, each appending its table to
# docs/BENCHMARKS.md (about 20 minutes on two cores). Never run by CI: these are
# measurements, not tests. Usage: bash bench/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
python3 -m bench.ceiling --seconds 30 --append
python3 -m bench.collector_load --seconds 20 --ceiling-seconds 15 --repeat 2 --append
python3 -m bench.collector_load --seconds 20 --ceiling-seconds 15 --repeat 2 --uvloop --append
python3 -m bench.pipeline --containers 10 --rates 1000,5000,max --read-ceiling --append
python3 -m bench.pipeline --containers 1 --rates 1000,5000 --append
python3 -m bench.pipeline --containers 100 --rates 1000,5000 --append
python3 -m bench.pipeline --containers 10 --rates 1000,3000 --peers --append
python3 -m bench.rsyslog --seconds 20 --append
python3 -m bench.hotpath --append
