# syntax=docker/dockerfile:1
# nimbus-scenarios as the NimbusGuard load generator image:
#   docker build -t nimbusguard-generator .
# or for both platforms at once (Apple Silicon, Graviton and x86 nodes):
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/nimbusguard-generator --push .
# Job args go straight to the CLI (ENTRYPOINT), in either form:
#   ["run", "heavy", "--url=http://consumer:8000", "--monitor", "--cleanup"]
#   ["--url=http://consumer:8000", "--test=heavy", "--monitor"]          (the seed's form)
#   ["wait", "http://consumer:8000/health"]                               (the init container)
# Runs as uid 10001 and works with a read-only root filesystem: the only writes are results,
# to results/ under the WORKDIR /work, and temporary files under /tmp; mount writable volumes
# (emptyDir) on both, as manifests/ does. tests/deploy/test_dockerfile.py checks this file and
# replays its pip steps in a fresh virtualenv; tests/deploy/test_image_platforms.py checks that
# every pinned dependency has a wheel for each platform or is compiled in the build stage.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- stage 1: the project's wheel, then wheels of its pinned dependencies ----------------------
# Both stages run on the target platform (buildx emulates a foreign one), so the wheels built here
# are the target's. image/constraints.txt pins every runtime dependency (tools/image_wheels.py
# writes it with image/wheels.json, the record of which wheels each platform has).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# A compiler, for dependencies without a wheel for the target platform (the image has Python's
# headers): pip builds those from their sdist. This stage only: the image gets no compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY grammar/ grammar/
COPY scenarios/ scenarios/
COPY nimbus_scenarios/ nimbus_scenarios/
COPY image/constraints.txt image/
RUN pip wheel --no-deps --wheel-dir /wheels .
# hdrhistogram has no aarch64 wheel: it is compiled from its sdist on every platform, so the amd64
# and arm64 images are built the same way (and the replay in the tests compiles it too).
RUN pip wheel --constraint image/constraints.txt --no-binary hdrhistogram \
    --wheel-dir /wheels /wheels/nimbus_scenarios-*.whl

# ---- stage 2: install from those wheels only, no compiler, no source ---------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/tmp
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels nimbus-scenarios
# The built-in scenarios ship inside the wheel: fail the build if they are missing.
RUN nimbus-scenarios list
# `kubectl create job NAME --image=nimbusguard-generator -- run heavy ...` puts `run heavy ...` in
# the container's command, replacing the ENTRYPOINT: a `run` program on PATH makes it work anyway.
RUN printf '#!/bin/sh\nexec nimbus-scenarios run "$@"\n' > /usr/local/bin/run \
    && chmod 755 /usr/local/bin/run
RUN mkdir -p /work && chown 10001:10001 /work
USER 10001:10001
WORKDIR /work
LABEL org.opencontainers.image.title="nimbusguard-generator" \
      org.opencontainers.image.description="nimbus-scenarios: autoscaling scenario runner" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["nimbus-scenarios"]
CMD ["--help"]
