# syntax=docker/dockerfile:1
# plus-worker image: one Fargate task runs one job (`python -m src.worker`, configured by env vars).
# Fargate runs it as linux/amd64: build with `docker buildx build --platform linux/amd64 .` (deploy.sh
# does); the platform is chosen at build time, not hard-coded in FROM (hadolint DL3029).
# test_scripts/image.sh builds it (docker or podman) and runs the container checks (issue 14).
#
# Init process: tini, baked into the image, rather than ECS `initProcessEnabled`. The worker has
# child processes (ffmpeg) and must get SIGTERM to save progress (SPEC §4.4). A PID-1 Python would
# not reap zombies and ignores signals it has no handler for; tini forwards SIGTERM/SIGINT to the
# worker and reaps children. Putting it in the image makes `docker run`, ECS and AWS Batch behave
# the same without relying on a task-definition flag. tini runs without `-g`: only the worker is
# signalled, and the worker stops ffmpeg cleanly itself.
#
# The container runs with a read-only root file system: /tmp (a volume on ECS, --tmpfs or -v with
# `docker run`) is the only place it writes.

# Any Debian bookworm image with python3 (>= 3.11) and venv; image.sh passes a locally made one where
# no container registry is reachable.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build stage: a virtualenv with exactly the versions of uv.lock -------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1

WORKDIR /build
COPY pyproject.toml uv.lock test_scripts/lock_requirement.py ./

# uv.lock is the one list of pinned versions (with hashes), for .venv and the image alike: the
# locked uv is installed by hash, then installs the runtime dependencies from the lock. The venv it
# makes has no pip or setuptools, and its modules are byte-compiled.
RUN python -m venv /opt/uv \
    && /opt/uv/bin/python lock_requirement.py uv.lock uv >uv-requirement.txt \
    && /opt/uv/bin/pip install --quiet --no-deps --require-hashes -r uv-requirement.txt \
    && /opt/uv/bin/uv sync --locked --no-install-project --python "$(command -v python3)"

# ---- runtime stage ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Debian's chromium for web.screenshot (`/usr/bin/chromium --headless`); `--build-arg WITH_BROWSER=0`
# leaves it out (about 385 MB smaller) for a worker that takes no screenshots.
ARG WITH_BROWSER=1

# ffmpeg for the vendor.ffmpeg.* actions, tini as PID 1, chromium when asked. Versions come from the
# Debian release of the base image (security updates at every build); pinning exact Debian
# revisions would break the build at every security update, so DL3008 is ignored on purpose.
# Debian's ffmpeg drags in Mesa's software OpenGL driver and the LLVM and Z3 it is built on (163 MB)
# although neither ffmpeg nor ffprobe links them (they are loaded only for an OpenGL context);
# dpkg leaves those files out, and with them what a headless worker never shows: icon themes,
# manuals, translations, and chromium's Vulkan validation layer (a debugging aid, 23 MB). The image tier checks that ffmpeg has every codec, container and
# filter the actions use (tests/image/ffmpeg_features.py).
# hadolint ignore=DL3008
RUN printf '%s\n' \
        'path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM-*' \
        'path-exclude=/usr/lib/x86_64-linux-gnu/libz3.so*' \
        'path-exclude=/usr/lib/x86_64-linux-gnu/dri/*' \
        'path-exclude=/usr/lib/chromium/libVkLayer_khronos_validation.so' \
        'path-exclude=/usr/share/icons/*' 'path-include=/usr/share/icons/*/index.theme' \
        'path-include=/usr/share/icons/*/cursor.theme' \
        'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' \
        >/etc/dpkg/dpkg.cfg.d/plus-worker-excludes \
    && set -- \
    && if [ "$WITH_BROWSER" = 1 ]; then set -- chromium; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini "$@" \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid worker --home-dir /home/worker --create-home \
        --shell /usr/sbin/nologin worker

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root pyproject.toml ./
COPY --chown=root:root feaas ./feaas
COPY --chown=root:root src ./src
# Byte-compiled now, so no start compiles (and a read-only root could not cache it anyway).
RUN python -m compileall -q /app/feaas /app/src

# No credentials here: in ECS the task role supplies them (ACCESS_KEY/SECRET_KEY stay unset).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    TMPDIR=/tmp

USER 10001:10001

ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "src.worker"]
