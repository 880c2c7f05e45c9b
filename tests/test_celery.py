from __future__ import annotations

import pytest

from annotate.celery import app


@pytest.mark.django_db(transaction=True)
def test_it_round_trips_a_task_through_a_real_worker_and_redis(celery_worker_process) -> None:
    assert app.conf.broker_url.startswith("redis://")
    result = app.send_task("annotate.health.ping", args=["hello"])
    reply = result.get(timeout=30)
    assert reply["reply"] == "hello"
    # The task ran in the worker process, not in this one.
    assert reply["worker_pid"] == str(celery_worker_process.pid)


def test_it_routes_reward_model_tasks_to_the_rm_queue() -> None:
    assert app.conf.task_default_queue == "default"
    assert {queue.name for queue in app.conf.task_queues} == {"default", "rm", "rm-batch"}
    assert app.amqp.router.route({}, "rm_service.tasks.train")["queue"].name == "rm"
    assert app.amqp.router.route({}, "annotate.agreement.tasks.refresh")["queue"].name == "default"


def test_it_gives_each_queue_its_own_exchange_and_key() -> None:
    # With one shared key, a task sent to "rm" would be delivered to "default" as well.
    bindings = {(q.exchange.name, q.routing_key) for q in app.conf.task_queues}
    assert bindings == {("default", "default"), ("rm", "rm"), ("rm-batch", "rm-batch")}
