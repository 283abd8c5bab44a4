#!/usr/bin/env bash
# Installs what the benchmarks need beyond logpipe's own dependencies, from the package
# registries this machine reaches; none of the peers' code is kept in the repository.
#   - py-spy (PyPI, the `bench` extra of pyproject.toml): profiles; uvloop (a dependency)
#   - rsyslog + rsyslog-elasticsearch (Debian): the collector's peer; not started as a
#     service (a policy-rc.d guard), the benchmark runs its own rsyslogd
#   - logspout (Go module proxy): the shipper's peer, built into $LOGPIPE_BENCH_DIR/go/bin;
#     when the proxy refuses it, the exact error is printed and kept in logspout-build.log
#     and the benchmarks use the Docker CLI as the Go follower instead
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

if [ -x "$WORK/go/bin/logspout" ]; then
  log "logspout: already built at $WORK/go/bin/logspout"
elif command -v go >/dev/null; then
  log "logspout: go install github.com/gliderlabs/logspout@latest"
  if GOPATH="$WORK/go" GOFLAGS=-mod=mod go install github.com/gliderlabs/logspout@latest \
    >"$WORK/logspout-build.log" 2>&1; then
    log "logspout: built at $WORK/go/bin/logspout"
  else
    log "logspout cannot be built here; the Docker CLI stands in for it. The error:"
    cat "$WORK/logspout-build.log" >&2
  fi
else
  log "logspout: no Go toolchain"
fi
exit 0
