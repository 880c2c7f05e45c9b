"""No Docker engine runs here: check docker-compose.yml against the settings instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _settings_variables() -> set[str]:
    sources = (REPO_ROOT / "annotate" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z_]+)"', sources))


def test_it_defines_the_production_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker-default", "worker-rm", "worker-rm-batch", "beat"}
    assert services["beat"]["command"][:4] == ["celery", "-A", "annotate", "beat"]  # CELERY_BEAT_SCHEDULE runs
    assert "gunicorn" in " ".join(services["web"]["command"])
    default = services["worker-default"]["command"]
    assert default[default.index("-Q") + 1] == "default"
    rm = services["worker-rm"]["command"]
    assert rm[rm.index("-Q") + 1] == "rm" and "--pool=solo" in rm and "--prefetch-multiplier=1" in rm
    assert "--disable-prefetch" in rm  # a training run never holds a scoring request behind it
    batch = services["worker-rm-batch"]["command"]
    assert batch[batch.index("-Q") + 1] == "rm-batch" and "--pool=solo" in batch and "--disable-prefetch" in batch
    for name in ("worker-rm", "worker-rm-batch"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]


def test_it_only_sets_variables_the_settings_read() -> None:
    known = _settings_variables() | {"CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE"}
    for name, service in _compose()["services"].items():
        if name in {"postgres", "redis"}:
            continue
        env = set(service["environment"])
        assert env <= known, f"{name} sets unknown variables {env - known}"
        assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"} <= env


def test_it_lists_every_settings_variable_in_the_env_example() -> None:
    example = (REPO_ROOT / "deploy" / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert _settings_variables() - listed == set()


def test_it_matches_the_queues_of_the_celery_app() -> None:
    from annotate.celery import app

    queues = {queue.name for queue in app.conf.task_queues}
    commands = [s["command"] for n, s in _compose()["services"].items() if n.startswith("worker-")]
    assert {c[c.index("-Q") + 1] for c in commands} == queues
