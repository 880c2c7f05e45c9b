from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotate.env import database_from_url, env_bool, env_int, env_list, env_str

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_it_reads_typed_values() -> None:
    environ = {"FLAG": "yes", "OFF": "0", "N": " 42 ", "HOSTS": "a.org, b.org,,", "NAME": "x"}
    assert env_bool("FLAG", False, environ=environ) is True
    assert env_bool("OFF", True, environ=environ) is False
    assert env_bool("MISSING", True, environ=environ) is True
    assert env_int("N", 1, environ=environ) == 42
    assert env_list("HOSTS", [], environ=environ) == ["a.org", "b.org"]
    assert env_str("NAME", environ=environ) == "x"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: env_bool("B", False, environ={"B": "maybe"}), "B must be a boolean"),
        (lambda: env_int("I", 1, environ={"I": "ten"}), "I must be an integer, got 'ten'"),
        (lambda: env_int("I", 1, minimum=1, environ={"I": "0"}), "I must be >= 1"),
        (lambda: env_str("REQUIRED", environ={}), "REQUIRED is required"),
        (lambda: database_from_url("mysql://u@h/db"), "DATABASE_URL must start with postgres://"),
        (lambda: database_from_url("postgres://u@h:5432/"), "DATABASE_URL must name a database"),
    ],
)
def test_it_rejects_bad_values_with_a_clear_message(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImproperlyConfigured, match=message):
        call()


def test_it_parses_a_postgres_url() -> None:
    config = database_from_url("postgres://annotate:secret@db.internal:6543/annotate")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        6543,
        "annotate",
        "annotate",
    )


def _load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    code = (
        "import annotate.settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, sep='|')"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_it_requires_a_secret_key_outside_debug(tmp_path: Path) -> None:
    result = _load_settings({"VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_it_defaults_to_embedded_sqlite_and_a_serverless_broker(tmp_path: Path) -> None:
    result = _load_settings({"DEBUG": "1", "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    engine, broker, debug = result.stdout.strip().split("|")
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert debug == "True"
    assert (tmp_path / "celery" / "queue").is_dir()


def test_it_selects_postgres_and_redis_from_urls(tmp_path: Path) -> None:
    result = _load_settings(
        {
            "SECRET_KEY": "k",
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql|redis://127.0.0.1:6379/3|False"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "http://nope"}, "REDIS_URL must start with redis://"),
        ({"DEBUG": "perhaps"}, "DEBUG must be a boolean"),
        ({"ASSIGNMENT_TTL_MINUTES": "0"}, "ASSIGNMENT_TTL_MINUTES must be >= 1"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be DEBUG, INFO"),
    ],
)
def test_it_stops_at_start_up_on_a_bad_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = _load_settings({"SECRET_KEY": "k", "VAR_DIR": str(tmp_path), **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
