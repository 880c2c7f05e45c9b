"""The web side of the batching scoring server: a small waited-on score/rank request without Celery.

The web process pushes the request onto a Redis list (``REQUESTS_KEY``) and blocks on a reply key of its
own with BLPOP; the scoring server, a thread of each rm worker (``rm_service/scoring_server.py``), pops
every request waiting within a few milliseconds, scores them in one forward pass and pushes each reply.
The answered request is recorded as a finished ``ScoringJob``, so the response body and ``/api/v1/jobs/<id>``
are the same as on the Celery path.

``scoring_serve`` returns None when the fast path does not apply (no Redis, turned off, or no scoring
server alive): the caller then uses the Celery path. Redis failing or the server stopping mid-request is
``RmUnavailable`` (503); no answer within ``RM_SCORE_SYNC_TIMEOUT_S`` is ``ScoringTimeout`` (504).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from annotate.errors import ApplicationError
from rm_service.models import JobStatus, ModelVersion, ScoringJob
from rm_service.services.common import RmUnavailable, without_paths

REQUESTS_KEY = "rm_service:scoring-server:requests"
ALIVE_KEY = "rm_service:scoring-server:alive"  # set by every live scoring server, with a short expiry
REPLY_KEY_PREFIX = "rm_service:scoring-server:reply:"
ALIVE_TTL_S = 10  # a server refreshes its key about every second (plus one batch)
REPLY_TTL_S = 60  # a reply nobody collects (its client gave up) expires
WAIT_SLICE_S = 1.0  # between slices of the wait, the client checks that a server is still alive

# Push only while a scoring server is alive, in one round trip: -1 = none alive (use Celery), else the
# length of the queue. The queue itself expires if every server dies, so requests don't pile up forever.
_PUSH_IF_ALIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return n
"""


class ScoringTimeout(ApplicationError):
    """The scoring server took longer than the request may wait (504)."""

    status = 504
    code = "rm_timeout"


_clients: dict[tuple[str, float], redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client(*, read_timeout_s: float | None = None) -> redis.Redis:
    """A pooled client of ``REDIS_URL`` whose every round trip is bounded (``REDIS_TIMEOUT_S``, or
    ``read_timeout_s`` for blocking pops that wait longer on purpose)."""
    url = settings.REDIS_URL
    timeout = read_timeout_s or settings.REDIS_TIMEOUT_S
    with _clients_lock:
        client = _clients.get((url, timeout))
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=settings.REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),  # a request never waits on retries: it answers 503
            )
            _clients[(url, timeout)] = client
        return client


def scoring_serve(
    *, user: User | None, kind: str, items: list[dict[str, Any]], params: dict[str, Any], version: ModelVersion
) -> ScoringJob | None:
    """Score a small request on the batching scoring server and record it as a finished job.

    Returns None when the fast path does not apply (the caller queues a Celery job instead).
    Raises RmUnavailable (503) when Redis fails or the server stops before answering, ScoringTimeout (504)
    after ``RM_SCORE_SYNC_TIMEOUT_S``.
    """
    if not settings.REDIS_URL or not settings.RM_SCORE_BATCHING:
        return None
    request_id = uuid.uuid4().hex
    timeout_s = settings.RM_SCORE_SYNC_TIMEOUT_S
    message = {
        "id": request_id,
        "kind": kind,
        "items": items,
        "params": params,
        "version": {"id": version.pk, "checkpoint_path": version.checkpoint_path},
        "deadline": time.time() + timeout_s,
    }
    started = timezone.now()
    try:
        queued = redis_client().eval(_PUSH_IF_ALIVE, 2, ALIVE_KEY, REQUESTS_KEY, json.dumps(message), REPLY_TTL_S)
    except redis.RedisError as exc:
        raise RmUnavailable(_broker_down(exc)) from exc
    if int(queued) < 0:
        return None
    reply = _wait_reply(request_id, timeout_s=timeout_s)
    return _record(user=user, kind=kind, items=items, params=params, version=version, reply=reply, started=started)


def _wait_reply(request_id: str, *, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    reply_key = REPLY_KEY_PREFIX + request_id
    waiter = redis_client(read_timeout_s=WAIT_SLICE_S + settings.REDIS_TIMEOUT_S)
    missing = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScoringTimeout(
                    f"The reward-model scoring server did not answer within {timeout_s:g} s. Try again later, "
                    "or send wait=false to queue a job and poll it."
                )
            popped = waiter.blpop([reply_key], timeout=min(WAIT_SLICE_S, left))
            if popped is not None:
                return dict(json.loads(popped[1]))
            # Missing twice in a row, a slice apart: a server busy past its refresh is not taken for dead.
            missing = 0 if waiter.exists(ALIVE_KEY) else missing + 1
            if missing >= 2:
                raise RmUnavailable(
                    "The reward-model service is unavailable: the scoring server stopped before answering. "
                    "Try again later."
                )
    except redis.RedisError as exc:
        raise RmUnavailable(_broker_down(exc)) from exc


def _broker_down(exc: Exception) -> str:
    return f"The reward-model service is unavailable: the task broker cannot be reached ({type(exc).__name__})."


def _record(
    *,
    user: User | None,
    kind: str,
    items: list[dict[str, Any]],
    params: dict[str, Any],
    version: ModelVersion,
    reply: dict[str, Any],
    started: datetime,
) -> ScoringJob:
    """The answered request as a finished job (one INSERT), with the server's result or its error."""
    ok = bool(reply.get("ok"))
    return ScoringJob.objects.create(
        kind=kind,
        items=items,
        params=params,
        model_version=version,
        created_by=user,
        status=JobStatus.SUCCEEDED if ok else JobStatus.FAILED,
        result=reply.get("result") if ok else None,
        error="" if ok else without_paths(str(reply.get("error", "scoring failed")))[:4000],
        progress={"done": len(items)} if ok else {},
        worker=str(reply.get("worker", ""))[:200],
        started_at=started,
        finished_at=timezone.now(),
    )
