#!/bin/sh
# The image's roles, each the README's production command (deploy/systemd/ runs the same):
#   web        gunicorn with uvicorn workers on :8000 (extra arguments go to gunicorn,
#              e.g. `web --workers 4`; FORWARDED_ALLOW_IPS is read by gunicorn itself)
#   worker     the task queue's worker (run several: `docker compose up --scale worker=3`)
#   scheduler  the periodic jobs (exactly one)
#   migrate    `check --deploy` (refuses a non-https SITE_URL), then the migrations
#   manage     any manage.py command, e.g. `manage createsuperuser`
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
web)
    # prometheus_client's multiprocess files must not outlive the processes that wrote them.
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
        find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
    fi
    # --no-control-socket: gunicorn 25+ would make one in $HOME, read-only here (and
    # nothing uses gunicornc); without the flag each start logs an error.
    exec gunicorn -c python:asksage_admin.ops.gunicorn asksage_admin.asgi \
        -k uvicorn_worker.UvicornWorker --workers 2 --reuse-port --bind 0.0.0.0:8000 \
        --no-control-socket "$@"
    ;;
worker)
    exec python manage.py db_worker --queue-name '*' --no-reload "$@"
    ;;
scheduler)
    exec python manage.py crontask --no-heartbeat "$@"
    ;;
migrate)
    python manage.py check --deploy
    exec python manage.py migrate --noinput "$@"
    ;;
manage)
    exec python manage.py "$@"
    ;;
*)
    echo "usage: entrypoint.sh web|worker|scheduler|migrate|manage [arguments]" >&2
    echo "unknown role: $role" >&2
    exit 64
    ;;
esac
