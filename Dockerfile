# hilbert container: `docker build -t hilbert .` (CPU by default).
#
# The torch wheel pinned in constraints.txt (PyPI torch 2.11.0) carries its own CUDA
# libraries, so the same image runs on CPU or, with `--gpus all`, on an NVIDIA GPU.
# Where a cluster policy wants an NVIDIA base image, pass one (it needs apt):
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 -t hilbert:cuda .
# Models are not baked in: mount a directory made with `hilbert models pull ... --to DIR`
# at /models (and a writable /data for the HF cache and outputs). Runs offline.
# Name the trained run once with HILBERT_MODEL (`hilbert score` falls back to it when there
# is no --model), and the usage runs as written:
#   docker run --rm -v "$PWD/models:/models:ro" -v "$PWD/data:/data" -e HILBERT_MODEL=/models/run \
#     hilbert score interviews/ --out scores.parquet
# (the run directory of `hilbert train` copied to models/run; interviews/ under data/)
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG EXTRAS=offline,multilingual
ENV PYANNOTE_METRICS_ENABLED=false \
    HF_HOME=/data/hf \
    HF_HUB_OFFLINE=1 \
    HILBERT_MODELS_DIR=/models \
    HILBERT_VENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /opt/hilbert
COPY pyproject.toml constraints.txt README.md ./
COPY scripts ./scripts
COPY models/registry.toml ./models/registry.toml
COPY recipes ./recipes
COPY hilbert_cli ./hilbert_cli
# The same install script as README and CI (apt packages, venv, pinned set, offline models).
RUN HILBERT_EDITABLE=0 HILBERT_EXTRAS=${EXTRAS} bash scripts/setup.sh \
 && rm -rf /root/.cache/pip /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 hilbert \
 && mkdir -p /data /models && chown -R hilbert /data /models
USER hilbert
WORKDIR /data
VOLUME ["/data", "/models"]
ENTRYPOINT ["hilbert"]
CMD ["--help"]
