# resontinex worker image: `docker build -t resontinex:0.1.0 .`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RESONTINEX_DATA_DIR=/var/lib/resontinex

WORKDIR /src
# Only what the package needs, so the image never carries a local .venv or .git.
# README.m[d]: the readme named in pyproject.toml, copied when present.
COPY pyproject.toml README.m[d] ./
COPY app ./app
COPY agents ./agents
COPY schemas ./schemas
COPY topics ./topics
COPY config ./config
RUN pip install . \
 && groupadd --system --gid 10001 resontinex \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/resontinex --create-home resontinex

# Faust keeps RocksDB table state and its own data under RESONTINEX_DATA_DIR.
WORKDIR /var/lib/resontinex
# Numeric, so Kubernetes can check runAsNonRoot.
USER 10001:10001

EXPOSE 6066
CMD ["resontinex", "worker", "--role", "core"]
