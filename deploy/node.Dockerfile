# A hublink node: runs one command (by default `hublink node upload`) and exits.
# Build from the repository root:
#   docker build -f deploy/node.Dockerfile -t hublink-node .
# Configuration and certificates at /etc/hublink, the linkage secret as a secret file,
# the extract at /data (all read-only); the token store and linked.csv in /var/lib/hublink,
# which must be kept and backed up: without the token store the keys mean nothing.

# The base image, pinned by digest: the multi-platform index of python:3.11.14-slim-bookworm.
# Override with --build-arg BASE_IMAGE=… for a newer digest or a registry mirror (deploy/README.md).
ARG BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE_IMAGE} AS build
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
ENTRYPOINT ["hublink"]
CMD ["node", "upload", "--config", "/etc/hublink/node.toml"]
