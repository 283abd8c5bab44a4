# What .ci/services and .ci/cluster both start, sourced by each (not run on its own):
# Java, the Elasticsearch distribution unpacked, dockerd with its busybox image.
# The caller sets LOG_TAG (e.g. services) before sourcing.

ES_VERSION=${LOGPIPE_ES_VERSION:-9.2.0}
ES_USER=logpipe-es
ES_ZIP="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"

log() { printf '[%s] %s\n' "${LOG_TAG:-ci}" "$*" >&2; }

find_java() {
  local j
  for j in /usr/lib/jvm/temurin-2[1-9]* /usr/lib/jvm/temurin-[3-9]* /usr/lib/jvm/java-2[1-9]-* ; do
    if [ -x "$j/bin/java" ]; then echo "$j"; return 0; fi
  done
  log "no Java 21+ under /usr/lib/jvm (Elasticsearch 9 needs one)"; return 1
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  local i
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up within ${secs}s"; return 1
}

# Elasticsearch refuses to run as root: it runs as this system user, whose home is $1.
es_user() {
  id "$ES_USER" >/dev/null 2>&1 || useradd --system --home-dir "$1" --shell /usr/sbin/nologin "$ES_USER"
}

# Unpack the distribution from Maven Central's zip (fetched by .ci/install) into $1,
# owned by the Elasticsearch user; nothing is done when $1 exists.
es_unpack() {
  local home=$1 parent; parent=$(dirname "$1")
  [ -d "$home" ] && return 0
  [ -f "$ES_ZIP" ] || { log "missing $ES_ZIP: run .ci/install"; return 1; }
  log "unpacking Elasticsearch $ES_VERSION into $home"
  mkdir -p "$parent"
  local tmp; tmp=$(mktemp -d -p "$parent")
  unzip -q "$ES_ZIP" -d "$tmp"
  mv "$tmp/elasticsearch-$ES_VERSION" "$home"
  rmdir "$tmp"
  chown -R "$ES_USER" "$home"
}

# Start dockerd in the background: $1 its socket, $2 its log, $3 its pid file, then more
# dockerd flags. No bridge and no iptables rules: containers run with --network none.
dockerd_start() {
  local sock=$1 logfile=$2 pidfile=$3; shift 3
  command -v dockerd >/dev/null || { log "dockerd missing: run .ci/install"; return 1; }
  mkdir -p "$(dirname "$logfile")" "$(dirname "$pidfile")"
  log "starting dockerd on $sock (log: $logfile)"
  nohup dockerd --iptables=false --ip6tables=false --bridge=none \
    --host "unix://$sock" "$@" </dev/null >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  wait_for "dockerd on $sock" 60 docker -H "unix://$sock" version --format '{{.Server.Version}}' \
    || { tail -n 20 "$logfile" >&2; return 1; }
}

# busybox:latest in the Docker Engine at socket $1, made with `docker import` from
# Debian's busybox-static (no image registry is needed).
busybox_image() {
  local sock=$1
  docker -H "unix://$sock" image inspect busybox:latest >/dev/null 2>&1 && return 0
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  mkdir -p "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker -H "unix://$sock" import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - busybox:latest >/dev/null
  rm -rf "$root"
  log "built busybox:latest from Debian's busybox-static in the Docker Engine at $sock"
}
