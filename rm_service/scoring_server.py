"""The batching scoring server: a thread of each rm worker that answers small score/rank requests.

Dynamic micro-batching, as model servers do it: the server blocks on the request list
(``services.serving.REQUESTS_KEY``); after the first request it takes every request that arrives within
``RM_SCORE_BATCH_WAIT_MS``, up to ``RM_SCORE_BATCH_MAX_ITEMS`` items, scores them all in one
``score_batch`` call (one forward pass when they fit in a batch) with the process's warm scorer and
featurizer cache, and pushes each request's reply to its own key. While a batch is being scored, new
requests queue up, so under load batches grow by themselves.

The model is batch invariant (each row is masked independently), so a request's scores are the same
whether it is scored alone or beside others, up to float32 rounding. If a batch fails, its requests are
retried one by one, so one bad request (say, a clip deleted meanwhile) fails alone.

The server holds no database connection: a request carries the model version's id and checkpoint path.
It survives Redis going away (it retries every second) and says it is alive with ``ALIVE_KEY``; the web
process sends requests only while that key exists, and uses the Celery path otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import redis
from django.conf import settings

from rm_service import worker
from rm_service.services.common import without_paths
from rm_service.services.jobs import score_inputs, scoring_result
from rm_service.services.serving import ALIVE_KEY, ALIVE_TTL_S, REPLY_KEY_PREFIX, REPLY_TTL_S, REQUESTS_KEY

logger = logging.getLogger(__name__)

POLL_S = 0.0005  # between polls for more requests inside the batching window
POP_TIMEOUT_S = 1.0  # how long one blocking pop waits for a first request before the loop refreshes ALIVE_KEY


@dataclass
class ScoringServer:
    """Pops, batches, scores and answers requests until ``stop`` is set.

    Args:
        client: Redis client whose read timeout exceeds ``POP_TIMEOUT_S``.
        name: this worker's name (recorded on the jobs it answers).
        wait_s: how long to wait for more requests after the first one.
        max_items: items per batch at most (a single larger request is still scored, alone).
    """

    client: redis.Redis
    name: str
    wait_s: float
    max_items: int
    stop: threading.Event = field(default_factory=threading.Event)
    batch_sizes: list[int] = field(default_factory=list)  # requests per batch served (the last 1000)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.client.set(ALIVE_KEY, self.name, ex=ALIVE_TTL_S)
                batch = self.next_batch()
                if batch:
                    self.serve(batch)
            except redis.RedisError:
                logger.warning("scoring server: Redis is unreachable; retrying in 1 s", exc_info=True)
                self.stop.wait(1.0)
            except Exception:  # never let one bad batch kill the server thread
                logger.exception("scoring server: a batch failed")
        try:
            self.client.delete(ALIVE_KEY)
        except redis.RedisError:
            pass

    def next_batch(self) -> list[dict[str, Any]]:
        """The first waiting request (blocking up to POP_TIMEOUT_S), then all that arrive in the window."""
        popped = cast("tuple[bytes, bytes] | None", self.client.blpop([REQUESTS_KEY], timeout=POP_TIMEOUT_S))
        if popped is None:
            return []
        batch = [json.loads(popped[1])]
        items = len(batch[0]["items"])
        deadline = time.monotonic() + self.wait_s
        while items < self.max_items:
            raw = self._pop_until(deadline)
            if raw is None:
                break
            request = json.loads(raw)
            if items + len(request["items"]) > self.max_items:
                self.client.lpush(REQUESTS_KEY, raw)  # first in line for the next batch
                break
            batch.append(request)
            items += len(request["items"])
        return batch

    def _pop_until(self, deadline: float) -> bytes | None:
        """The next waiting request, polling for one until ``deadline`` (monotonic) at most.

        Not a BLPOP with the window as its timeout: Redis checks blocked clients' timeouts in its cron, every
        1/hz s (100 ms by default), so a 2 ms window would hold a lone request for up to 100 ms.
        """
        while True:
            raw = cast("bytes | None", self.client.lpop(REQUESTS_KEY))  # without a count: one value or None
            left = deadline - time.monotonic()
            if raw is not None or left <= 0:
                return raw
            time.sleep(min(POLL_S, left))

    def serve(self, batch: list[dict[str, Any]]) -> None:
        now = time.time()
        live = [r for r in batch if r["deadline"] > now]  # their clients gave up: don't spend the GPU on them
        self.batch_sizes[:] = [*self.batch_sizes[-999:], len(live)]
        for group in _groups(live):
            replies = self.score_group(group)
            pipe = self.client.pipeline(transaction=False)
            for request, reply in zip(group, replies, strict=True):
                key = REPLY_KEY_PREFIX + request["id"]
                pipe.rpush(key, json.dumps(reply | {"worker": self.name}))
                pipe.expire(key, REPLY_TTL_S)
            pipe.execute()

    def score_group(self, group: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replies for requests that share a model version and ``max_dur``: one batch, else one by one."""
        try:
            return _score(group)
        except Exception as exc:
            if len(group) == 1:
                logger.exception("scoring server: request %s failed", group[0]["id"])
                return [_failure(exc)]
        replies = []
        for request in group:
            try:
                replies.extend(_score([request]))
            except Exception as exc:
                logger.exception("scoring server: request %s failed", request["id"])
                replies.append(_failure(exc))
        return replies


def _groups(requests: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in requests:
        key = (r["version"]["id"], r["version"]["checkpoint_path"], r["params"].get("max_dur"))
        groups.setdefault(key, []).append(r)
    yield from groups.values()


def _score(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    version = group[0]["version"]
    scorer = worker.scorer_for_checkpoint(version_id=version["id"], checkpoint_path=version["checkpoint_path"])
    inputs = [item for request in group for item in score_inputs(request["items"])]
    with worker.scoring_lock:
        scores = scorer.score_batch(inputs, batch_size=max(1, len(inputs)), max_dur=group[0]["params"].get("max_dur"))
    replies = []
    start = 0
    for request in group:
        rows: np.ndarray = scores[start : start + len(request["items"])]
        start += len(request["items"])
        result = scoring_result(kind=request["kind"], params=request["params"], version_id=version["id"], scores=rows)
        replies.append({"ok": True, "result": result})
    return replies


def _failure(exc: Exception) -> dict[str, Any]:
    return {"ok": False, "error": without_paths(f"{type(exc).__name__}: {exc}")}


def scoring_server_start(*, name: str, stop: threading.Event) -> ScoringServer | None:
    """Start the server thread of this rm worker (None when there is no Redis or batching is off)."""
    if not settings.REDIS_URL or not settings.RM_SCORE_BATCHING:
        return None
    from rm_service.services.serving import redis_client

    server = ScoringServer(
        client=redis_client(read_timeout_s=POP_TIMEOUT_S + settings.REDIS_TIMEOUT_S + 1.0),
        name=name,
        wait_s=settings.RM_SCORE_BATCH_WAIT_MS / 1000.0,
        max_items=settings.RM_SCORE_BATCH_MAX_ITEMS,
        stop=stop,
    )
    threading.Thread(target=server.run, name="rm-scoring-server", daemon=True).start()
    return server
