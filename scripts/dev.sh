#!/usr/bin/env bash
# One command from a fresh clone to a running platform with demo data, on the embedded
# defaults (SQLite under var/, Celery over the filesystem transport): no servers needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DEBUG=${DEBUG:-1}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PORT=${PORT:-8000}
PY=.venv/bin/python

echo "==> migrating and loading demo data (with SIMULATED votes from annotator personas)"
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py demo

mkdir -p var/log
echo "==> starting a Celery worker (queues default, rm, rm-batch; with beat for periodic tasks) — log: var/log/worker.log"
$PY -m celery -A annotate worker -Q default,rm,rm-batch --pool=solo --concurrency=1 --prefetch-multiplier=1 \
  -B --schedule var/celerybeat-schedule --loglevel=INFO >var/log/worker.log 2>&1 &
WORKER=$!
# In the background, one after the other: a tiny model trained on the demo's simulated votes, activated with
# its predictions (about two minutes; the staff pages then show a model), and the offline starter model
# (stage 1 on installed Debian music + synthesised music; a few CPU-minutes, reused afterwards), registered and
# activated only if no model is active.
echo "==> training the demo model, then building/reusing the starter model, in the background — logs: var/log/demo_model.log, var/log/starter.log"
( nice -n 10 $PY manage.py demo_model >var/log/demo_model.log 2>&1
  nice -n 10 $PY manage.py rm_starter >var/log/starter.log 2>&1 ) &
STARTER=$!
trap 'kill $WORKER $STARTER 2>/dev/null || true' EXIT INT TERM

echo
echo "    The platform is at http://127.0.0.1:$PORT/  (admin: http://127.0.0.1:$PORT/admin/)"
echo "    Log in with one of the demo accounts printed above. Ctrl-C stops everything."
echo
.venv/bin/gunicorn -c deploy/gunicorn.conf.py --bind "127.0.0.1:$PORT" annotate.wsgi
