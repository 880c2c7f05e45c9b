"""Publishing never hangs on the broker: down and frozen brokers answer within bounded time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import transaction

from annotate.broker import BrokerUnavailable, broker_ping, task_publish, task_publish_on_commit
from annotate.celery import ping
from tests.faults import dead_redis_url, own_redis


def _point_at(settings, url: str) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url


def test_it_publishes_to_a_live_broker(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with own_redis(tmp_path) as redis_server:
        _point_at(settings, redis_server.url)
        task_publish(ping, args=["hello"], queue="default")
        import redis

        queued = redis.Redis.from_url(redis_server.url).llen("default")
    assert queued == 1


def test_it_refuses_fast_when_the_broker_is_down(settings) -> None:  # type: ignore[no-untyped-def]
    _point_at(settings, dead_redis_url())
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="task queue is unavailable"):
        task_publish(ping, args=["x"], queue="default")
    assert time.monotonic() - started < 2.0


def test_it_refuses_fast_when_the_broker_is_frozen(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with own_redis(tmp_path) as redis_server:
        _point_at(settings, redis_server.url)
        redis_server.freeze()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            task_publish(ping, args=["x"], queue="default")
        publish_s = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - any error will do, as long as it comes in time
            broker_ping(timeout=settings.REDIS_TIMEOUT_S)
        ping_s = time.monotonic() - started
    assert publish_s < 2.0 and ping_s < 2.0


@pytest.mark.django_db(transaction=True)
def test_it_reports_a_refused_message_to_the_caller_after_commit(settings) -> None:  # type: ignore[no-untyped-def]
    _point_at(settings, dead_redis_url())
    failures: list[str] = []
    with pytest.raises(BrokerUnavailable):
        with transaction.atomic():
            task_publish_on_commit(ping, args=["x"], on_failure=failures.append, queue="default")
            assert failures == []  # nothing is sent before the commit
    assert len(failures) == 1 and "task queue is unavailable" in failures[0]
