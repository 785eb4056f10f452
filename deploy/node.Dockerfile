# A hublink node: runs one command (by default `hublink node upload`) and exits.
# Build from the repository root:
#   docker build -f deploy/node.Dockerfile -t hublink-node .
# Configuration and certificates at /etc/hublink, the linkage secret as a secret file,
# the extract at /data (all read-only); the token store and linked.csv in /var/lib/hublink,
# which must be kept and backed up: without the token store the keys mean nothing.

FROM python:3.11.14-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY hublink ./hublink
COPY coordinator ./coordinator
COPY node ./node
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements.lock .

FROM python:3.11.14-slim-bookworm
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
