# syntax=docker/dockerfile:1
# The admin console's image: one image, four roles (web | worker | scheduler | migrate; see
# deploy/docker/entrypoint.sh). Building needs PyPI (and Docker Hub) once; the result runs
# air-gapped: `docker save asksage-admin:TAG | gzip > asksage-admin.tar.gz`, then
# `docker load` at the site. `docker build --target wheels --output type=local,dest=wheels .`
# exports the same wheels for hosts that run the systemd units instead of containers.
ARG PYTHON_VERSION=3.13

# -- builder: a wheel for every runtime dependency, compilers available if one needs them --
FROM python:${PYTHON_VERSION}-bookworm AS builder
WORKDIR /build
COPY pyproject.toml deploy/constraints.txt ./
# pyproject.toml is the one list of dependencies (the project itself is not a package:
# [tool.setuptools] packages = []); constraints.txt pins what they pull in.
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
 && pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels \
        -r requirements.txt -c constraints.txt

# -- wheels: only the wheels (and the two lists), for `--target wheels --output ...` --
FROM scratch AS wheels
COPY --from=builder /wheels /
COPY --from=builder /build/requirements.txt /build/constraints.txt /

# -- runtime: slim, no compilers, no pip cache, not root --
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 asksage \
 && useradd --system --uid 10001 --gid asksage --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin asksage
# Installed from the builder's wheels only (--no-index): nothing is fetched in this stage,
# and the wheels are bind-mounted, so they add no layer to the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,from=builder,source=/build,target=/lists \
    pip install --no-index --find-links /wheels -r /lists/requirements.txt -c /lists/constraints.txt

WORKDIR /app
# The source stays owned by root: the app's user can read it, not change it.
COPY . /app
# Static files are collected (hashed, compressed) at build time; whitenoise serves them.
# Settings refuse to load without a SECRET_KEY, so this one command gets a build-only dummy:
# it is set for this RUN alone (not ENV), so it is in no layer's environment and never
# reaches a running container, which refuses to start until it is given a real one.
RUN SECRET_KEY=build-only-collectstatic-not-a-secret python manage.py collectstatic --noinput -v0 \
 && python -m compileall -q -j 0 /app /usr/local/lib/python3*/site-packages \
 && chmod 0755 /app/deploy/docker/entrypoint.sh

USER 10001:10001
EXPOSE 8000
# Liveness of the web role (/healthz never touches the database). compose.yaml turns it off
# for the roles that serve no HTTP. /readyz is for the load balancer, not for restarts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["/app/deploy/docker/entrypoint.sh"]
CMD ["web"]
