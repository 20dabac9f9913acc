# Every Tandem image, from the repository root (the build context). Build with `tandem build`:
#   tandem build gateway sklearn      (or all: tandem build)
# or by hand:
#   docker build --target gateway -t tandem-gateway .
#   docker build --target framework --build-arg FRAMEWORK=sklearn -t tandem-sklearn .
# FRAMEWORK: sklearn, pytorch or tensorflow. BASE_IMAGE: any image with python3 >= 3.11 and its
# venv module (python:3.11-slim, Debian ...). One framework stage takes FRAMEWORK, rather than a
# stage per framework, because Docker's classic builder (the Docker SDK's) runs every stage above
# the target: a stage per framework would install PyTorch into the TensorFlow build.
ARG BASE_IMAGE=python:3.11-slim

# What every image shares: Python in a venv, and the core dependencies installed from pyproject
# alone, so that editing the code does not reinstall them.
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# A venv works the same on the official python image and on a distribution's python3 (whose
# system pip refuses to install, PEP 668).
RUN python3 -m venv /opt/venv
WORKDIR /opt/tandem
COPY pyproject.toml ./
RUN touch README.md && pip install . && pip uninstall -y tandem

# The gateway: it serves every spec in /etc/tandem/specs (mount your own).
# Run next to containers that already run (compose does this): TANDEM_BACKEND=external, and each
# container answers at TANDEM_EXTERNAL_URL (default http://{endpoint}-{hostname}:8080).
# Options go after the image name: docker run tandem-gateway --log-level debug
FROM base AS gateway
ENV TANDEM_HOST=0.0.0.0 \
    TANDEM_PORT=8080 \
    TANDEM_STATE_DIR=/var/lib/tandem \
    TANDEM_SPECS=/etc/tandem/specs
COPY README.md ./
COPY containers ./containers
COPY gateway ./gateway
COPY pipelines ./pipelines
RUN pip install --no-deps . && rm -rf /opt/tandem && mkdir -p "$TANDEM_SPECS" "$TANDEM_STATE_DIR"
WORKDIR /var/lib/tandem
EXPOSE 8080
# `exec` makes tandem PID 1, so `docker stop` (SIGTERM) drains and stops it cleanly.
ENTRYPOINT ["/bin/sh", "-c", "exec tandem serve \"$@\" \"$TANDEM_SPECS\"/*.yaml", "tandem"]

# A framework container: SageMaker's container contract around one framework's models.
# Run:  docker run -p 8080:8080 -v "$PWD/model:/opt/ml/model:ro" tandem-sklearn serve
FROM base AS framework
ARG FRAMEWORK
# PyTorch comes from its CPU wheel index, which keeps CUDA libraries (gigabytes) out of the image;
# point TORCH_INDEX_URL elsewhere for GPUs.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true
ENV TANDEM_FRAMEWORK=${FRAMEWORK}
RUN test -n "$FRAMEWORK" || { echo "needs --build-arg FRAMEWORK=sklearn|pytorch|tensorflow" >&2; exit 1; } \
    && if [ "$FRAMEWORK" = pytorch ]; then \
        pip install --index-url "$TORCH_INDEX_URL" "torch==2.13.0"; fi \
    && pip install ".[$FRAMEWORK]" && pip uninstall -y tandem
COPY README.md ./
COPY containers ./containers
RUN pip install --no-deps . && rm -rf /opt/tandem
WORKDIR /opt/ml
EXPOSE 8080
# `docker run <image> serve` (SageMaker's way) runs `python -m containers serve`.
ENTRYPOINT ["python", "-m", "containers"]
CMD ["serve"]
