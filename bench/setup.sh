#!/usr/bin/env bash
# Installs what the benchmarks need beyond logpipe's own dependencies, from the package
# registries this machine reaches; none of the peers' code is kept in the repository.
#   - py-spy (PyPI, the `bench` extra of pyproject.toml): profiles; uvloop (a dependency)
#   - rsyslog + rsyslog-elasticsearch (Debian): the collector's peer; not started as a
#     service (a policy-rc.d guard), the benchmark runs its own rsyslogd
# The shipper's peers (Fluent Bit, logspout) are not installed here: bench.sidebyside and
# bench.pipeline --peers take prebuilt binaries from a peers directory (--peers-dir or
# LOGPIPE_BENCH_PEERS) or PATH, and say which they found (see bench/README.md).
# Usage: bash bench/setup.sh
set -uo pipefail
WORK=${LOGPIPE_BENCH_DIR:-/tmp/logpipe-bench}
mkdir -p "$WORK"
log() { printf '[bench setup] %s\n' "$*" >&2; }

python3 -m pip install -q "py-spy>=0.4" "uvloop>=0.19" || log "pip install failed"  # the bench extra

if ! command -v rsyslogd >/dev/null || ! dpkg -s rsyslog-elasticsearch >/dev/null 2>&1; then
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    guard=yes
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsyslog rsyslog-elasticsearch \
    >"$WORK/apt.log" 2>&1 || log "apt-get install rsyslog failed: see $WORK/apt.log"
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi
command -v rsyslogd >/dev/null && log "rsyslog: $(rsyslogd -v | head -1)"

exit 0
