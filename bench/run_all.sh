#!/usr/bin/env bash
# Every benchmark once, one after the other, each appending its table to
# docs/BENCHMARKS.md (about 50 minutes on two cores). Never run by CI: these are
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
python3 -m bench.tailcost --containers 10 --rate 5000 --rounds 2 --append
# The peers are optional prebuilt binaries (bench/README.md, Setup): runs that need
# logspout are skipped without it; bench.sidebyside skips the rows of a missing peer.
if python3 -c 'import sys; from bench import peers; sys.exit(not peers.find(None).binaries[peers.LOGSPOUT])'; then
  python3 -m bench.pipeline --containers 10 --rates 1000,3000 --peers --append
else
  echo "bench.pipeline --peers skipped: logspout not found (see bench/README.md, Setup)" >&2
fi
python3 -m bench.sidebyside --containers 10 --lines 36000 --repeat 2 --append
python3 -m bench.sidebyside --containers 10 --lines 36000 --repeat 2 --existing --only logpipe,fluent-bit --append
python3 -m bench.sidebyside --live 5000 --seconds 60 --repeat 2 --append
python3 -m bench.sidebyside --live 5000 --seconds 60 --search-every 5 --repeat 2 --append
python3 -m bench.rsyslog --seconds 20 --append
python3 -m bench.hotpath --append
