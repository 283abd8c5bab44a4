# One image for both logpipe processes:
#   docker run ... logpipe logpipe-collector serve     (the default command)
#   docker run ... logpipe logpipe-shipper
# The base is a build argument so that a locally made image (see .ci/image) or a
# mirror's copy can stand in for the official one.
ARG BASE=python:3.11-slim

# The compiled hot paths (native/shipper, native/collector: Rust) are built outside the
# image, where a Rust toolchain is: .ci/image makes their wheels for the base's Python
# and passes NATIVE (their sources' hash); this build installs them from its wheelhouse
# only, never from an index. Without them the image runs the Python paths: the same
# documents, more CPU per line (docs/architecture.md). Each process's start-up log line
# says which path it runs.

# ---- build: a virtualenv with logpipe and its dependencies ------------------------
FROM ${BASE} AS build
# Marks both stages' images, so that .ci/image can remove the ones earlier builds left
# untagged (each build of new code leaves the previous build stage and image behind).
LABEL dev.logpipe.image="build"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Optional pip settings for mirrors or an offline wheelhouse; pip reads them from the
# environment, and unset build arguments stay out of it.
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
RUN python3 -m venv /opt/logpipe
WORKDIR /src
# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md* ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && /opt/logpipe/bin/pip install --only-binary=:all: -r /tmp/requirements.txt 'setuptools>=77'
COPY LICENSE ./
COPY shipper/ shipper/
COPY collector/ collector/
COPY logpipe/ logpipe/
# The Kibana saved objects that `logpipe-collector setup --kibana-url` imports: installed
# as the package data collector/dashboards/.
COPY dashboards/ dashboards/
# NATIVE: set (to the compiled paths' source hash, so a change rebuilds this layer) when
# the wheelhouse carries their wheels; a wheel this Python cannot take leaves the Python
# path, and says so. pip and setuptools are build tools: they leave with this stage.
ARG NATIVE=
RUN /opt/logpipe/bin/pip install --no-deps --no-build-isolation . \
 && if [ -n "$NATIVE" ]; then \
        /opt/logpipe/bin/pip install --no-index --no-deps --only-binary=:all: \
            logpipe-shipper-native logpipe-collector-native \
        || echo "compiled hot paths not installable on this Python: the image runs the Python paths"; \
    fi \
 && /opt/logpipe/bin/pip uninstall --yes --quiet setuptools pip \
 && /opt/logpipe/bin/python -m compileall -q /opt/logpipe

# ---- runtime ------------------------------------------------------------------------
FROM ${BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="logpipe" \
      org.opencontainers.image.description="Centralized log aggregation for Docker hosts: shipper and collector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.logpipe.image="runtime"

# A fixed uid/gid so that volumes and the docker socket's group can be granted to it.
# /var/lib/logpipe holds the shipper's state (default /var/lib/logpipe/shipper): a named
# volume mounted there starts out owned by this user.
RUN groupadd --gid 10001 logpipe \
 && useradd --uid 10001 --gid logpipe --no-create-home --home-dir /var/lib/logpipe \
        --shell /usr/sbin/nologin logpipe \
 && mkdir -p /var/lib/logpipe /etc/logpipe \
 && chown logpipe:logpipe /var/lib/logpipe

# An official python image brings pip, setuptools and wheel: nothing at run time needs them.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi

COPY --from=build /opt/logpipe /opt/logpipe

ENV PATH=/opt/logpipe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER logpipe
WORKDIR /var/lib/logpipe
# 8080: the collector's API (/v1/logs, /healthz, /readyz, /metrics; the read API's
#       /v1/search and /v1/tail when it is on).
# 8081: the shipper's /healthz, /status, /metrics and /logs.
EXPOSE 8080 8081

# The probe asks the process this container runs (pid 1's command line says which) on
# its own port, so that on a host network it cannot mistake a neighbour for itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python3", "-c", "\
import os, ssl, sys, urllib.request\n\
shipper = b'shipper' in open('/proc/1/cmdline', 'rb').read()\n\
var, default = ('LOGPIPE_HTTP_LISTEN', '0.0.0.0:8081') if shipper else ('LOGPIPE_LISTEN', '0.0.0.0:8080')\n\
host, _, port = os.environ.get(var, default).rpartition(':')\n\
host = '127.0.0.1' if host in ('', '0.0.0.0', '::', '[::]') else host\n\
scheme = 'https' if not shipper and os.environ.get('LOGPIPE_TLS_CERT') else 'http'\n\
ctx = ssl.create_default_context()\n\
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE\n\
try:\n\
    urllib.request.urlopen(f'{scheme}://{host}:{port}/healthz', timeout=4, context=ctx)\n\
except OSError as exc:\n\
    sys.exit(f'{scheme}://{host}:{port}/healthz: {exc}')\n\
"]

CMD ["logpipe-collector", "serve"]
