# syntax=docker/dockerfile:1
# livesell's production image: docs/deploy.md. Two stages: the build stage installs the project
# (no dev, bench or locust extras) into a virtualenv; the runtime stage copies only that venv,
# so no compiler, pip cache or source tree ships. Every dependency has a manylinux wheel
# (aiortc, av with its own FFmpeg, pylibsrtp, asyncpg, hiredis, uvloop): no apt packages.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/livesell
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chat ./chat
COPY flashsale ./flashsale
COPY inventory ./inventory
COPY stream ./stream
COPY web ./web
COPY loadtest ./loadtest
# A regular (not editable) install: the Lua scripts, migrations, templates and static files
# travel as package data.
# The import check fails the build when a native wheel (av, pylibsrtp, uvloop) does not load.
RUN /opt/livesell/bin/pip install . \
    && /opt/livesell/bin/python -c "import web.app, stream.relay, asyncpg, uvloop"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/livesell/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LIVESELL_HOST=0.0.0.0 \
    LIVESELL_PORT=8080 \
    LIVESELL_DATA_DIR=/var/lib/livesell \
    LIVESELL_LOG_FORMAT=json
# A fixed, unprivileged uid/gid, so volume ownership and runAsUser in Kubernetes agree.
RUN groupadd --system --gid 10001 livesell \
    && useradd --system --uid 10001 --gid livesell --home-dir /var/lib/livesell \
       --shell /usr/sbin/nologin livesell \
    && mkdir -p /var/lib/livesell \
    && chown livesell:livesell /var/lib/livesell
COPY --from=build /opt/livesell /opt/livesell
USER 10001:10001
WORKDIR /var/lib/livesell
VOLUME ["/var/lib/livesell"]
# 8080 is the shared port; with --workers N, worker i also listens on 8081 + i (WHEP redirects).
EXPOSE 8080
# Liveness only: /healthz answers while the process runs. Readiness (/readyz: Redis and the
# database answer, 503 while draining) belongs to the orchestrator: a Kubernetes readinessProbe,
# compose's depends_on. No curl in the slim image: Python's own urllib does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LIVESELL_PORT', '8080'), timeout=2)"]
# livesell handles SIGTERM itself (workers drain their sockets, then the persister stops).
STOPSIGNAL SIGTERM
ENTRYPOINT ["livesell"]
CMD ["serve"]
