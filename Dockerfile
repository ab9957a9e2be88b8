# syntax=docker/dockerfile:1
# nimbus-scenarios as the NimbusGuard load generator image:
#   docker build -t nimbusguard-generator .
# Job args go straight to the CLI (ENTRYPOINT), in either form:
#   ["run", "heavy", "--url=http://consumer:8000", "--monitor", "--cleanup"]
#   ["--url=http://consumer:8000", "--test=heavy", "--monitor"]          (the seed's form)
#   ["wait", "http://consumer:8000/health"]                               (the init container)
# Runs as uid 10001 and works with a read-only root filesystem: the only writes are results,
# to results/ under the WORKDIR /work, and temporary files under /tmp; mount writable volumes
# (emptyDir) on both, as manifests/ does. tests/deploy/test_dockerfile.py checks this file and
# replays its pip steps in a fresh virtualenv.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- stage 1: the project's wheel, then wheels of its pinned dependencies ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY grammar/ grammar/
COPY scenarios/ scenarios/
COPY nimbus_scenarios/ nimbus_scenarios/
RUN pip wheel --no-deps --wheel-dir /wheels .
RUN pip wheel --wheel-dir /wheels /wheels/nimbus_scenarios-*.whl

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
