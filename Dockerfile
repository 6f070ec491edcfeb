# syntax=docker/dockerfile:1
# plus-worker image: one Fargate task runs one job (`python -m src.worker`, configured by env vars).
# Fargate runs it as linux/amd64: build with `docker buildx build --platform linux/amd64 .` (deploy.sh
# does); the platform is chosen at build time, not hard-coded in FROM (hadolint DL3029).
#
# Init process: tini, baked into the image, rather than ECS `initProcessEnabled`. The worker has
# child processes (ffmpeg) and must get SIGTERM to save progress (SPEC §4.4). A PID-1 Python would
# not reap zombies and ignores signals it has no handler for; tini forwards SIGTERM/SIGINT to the
# worker and reaps children. Putting it in the image makes `docker run`, ECS and AWS Batch behave
# the same without relying on a task-definition flag. tini runs without `-g`: only the worker is
# signalled, and the worker stops ffmpeg cleanly itself.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build stage: a virtualenv with pinned dependencies -------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Runtime dependencies of pyproject.toml (duckdb and fsspec included), pinned with their
# transitive dependencies so two builds of one commit get the same libraries.
RUN pip install \
        boto3==1.43.11 \
        botocore==1.43.11 \
        s3transfer==0.17.0 \
        jmespath==1.1.0 \
        python-dateutil==2.9.0.post0 \
        six==1.17.0 \
        urllib3==2.7.0 \
        protobuf==7.36.2 \
        pydantic==2.13.4 \
        pydantic-core==2.46.4 \
        pydantic-settings==2.14.1 \
        python-dotenv==1.2.2 \
        annotated-types==0.7.0 \
        typing-extensions==4.15.0 \
        typing-inspection==0.4.2 \
        duckdb==2.0.1 \
        fsspec==2026.9.0

# ---- runtime stage ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# ffmpeg for the vendor.ffmpeg.* actions, tini as PID 1. Versions come from the pinned Debian
# release of the base image; pinning exact Debian revisions would break the build at every
# security update, so DL3008 is ignored on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid worker --home-dir /home/worker --create-home \
        --shell /usr/sbin/nologin worker

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root pyproject.toml ./
COPY --chown=root:root feaas ./feaas
COPY --chown=root:root src ./src

# No credentials here: in ECS the task role supplies them (ACCESS_KEY/SECRET_KEY stay unset).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    TMPDIR=/tmp

USER 10001:10001

ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "src.worker"]
