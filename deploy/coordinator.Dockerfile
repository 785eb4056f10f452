# The hublink coordinator. Build from the repository root:
#   docker build -f deploy/coordinator.Dockerfile -t hublink-coordinator .
# Configuration, certificates and project files are mounted at /etc/hublink (read-only);
# the database and audit signing key live in the volume at /var/lib/hublink.

# The base image, pinned by digest: the multi-platform index of python:3.11.14-slim-bookworm.
# Override with --build-arg BASE_IMAGE=… for a newer digest or a registry mirror (deploy/README.md).
ARG BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE_IMAGE} AS build
# anonlink and clkhash dependencies without a wheel for this platform compile here only.
# An organisation's CA for a TLS-intercepting proxy: every deploy/certs/*.crt is trusted by the
# build (apt, pip); the folder holds only a README otherwise (deploy/certs/README.md).
COPY deploy/certs/ /usr/local/share/ca-certificates/hublink/
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN update-ca-certificates \
 && apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY hublink ./hublink
COPY coordinator ./coordinator
COPY node ./node
# The lock route: every dependency pinned, none resolved (clkhash's own pins are overridden).
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements.lock .

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps --no-index /wheels/*.whl && rm -rf /wheels \
 && groupadd --system --gid 10001 hublink \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hublink --create-home \
    --shell /usr/sbin/nologin hublink
USER 10001:10001
WORKDIR /var/lib/hublink
VOLUME ["/var/lib/hublink"]
# 50051: gRPC with mutual TLS. 9100: /healthz, /readyz, /metrics over plain HTTP.
EXPOSE 50051 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9100/readyz', timeout=4).status != 200)"]
# SIGTERM (docker stop) stops it cleanly; give it shutdown_grace_seconds twice over.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hublink"]
CMD ["coordinator", "serve", "--config", "/etc/hublink/coordinator.toml"]
