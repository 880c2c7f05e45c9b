"""The fixed cast and shared fixtures.

alice is staff, bob is an annotator, charlie is an annotator who must never reach bob's work.
Tests run against real PostgreSQL and Redis (see [tool.pytest.ini_options] env in pyproject.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from tests import factories

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory: pytest.TempPathFactory) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(_session_media_root(tmp_path_factory))


_MEDIA: dict[str, Path] = {}


def _session_media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "root" not in _MEDIA:
        _MEDIA["root"] = tmp_path_factory.mktemp("media")
    return _MEDIA["root"]


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_test_database_sessions(django_db_setup, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Let the test database be dropped at the end of the session.

    A live-server request thread that the browser abandoned mid-stream can die without closing its
    connection; end such leftovers (never this process's own) before pytest-django drops the database.
    """
    yield
    from django.db import connection

    if not str(connection.settings_dict["NAME"]).startswith("test_"):
        return  # no test of this session used the database, so none was created
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _data_roots(settings) -> None:  # type: ignore[no-untyped-def]
    # Tests build their training data under the system temporary directory.
    settings.RM_DATA_ROOTS = [*settings.RM_DATA_ROOTS, tempfile.gettempdir(), str(REPO_ROOT)]


@pytest.fixture
def migrator(transactional_db: None) -> Iterator[object]:
    """Migrate the test database to a target state, returning that state's apps; afterwards the
    schema is put back at every app's latest migration, so later tests never see an old one."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(targets: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        executor.loader.build_graph()
        return executor.loader.project_state(targets).apps

    try:
        yield migrate
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", "bob@example.org", "bob-pass-123")


@pytest.fixture
def charlie(db: None) -> User:
    return User.objects.create_user("charlie", "charlie@example.org", "charlie-pass-123")


@pytest.fixture
def campaign(db: None):  # type: ignore[no-untyped-def]
    return factories.make_campaign(name="Test campaign")


@pytest.fixture
def comparison(campaign):  # type: ignore[no-untyped-def]
    return factories.make_comparison(campaign)


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess (worker, gunicorn) that must see the test database and media."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[subprocess.Popen[bytes]]:  # type: ignore[no-untyped-def]
    """A real Celery worker on both queues, against the test database and the test Redis.

    Tests that hand it work must use ``transactional_db`` so their rows are committed.
    """
    from annotate.celery import app

    media = _session_media_root(tmp_path_factory)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        env = worker_env({"MEDIA_ROOT": str(media)})
    app.control.purge()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "annotate",
            "worker",
            "-Q",
            "default,rm,rm-batch",
            "--pool=solo",
            "--concurrency=1",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            f"--hostname=test-{os.getpid()}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()[-3000:]}")
            try:
                app.send_task("annotate.health.ping", args=["ready"]).get(timeout=2)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"celery worker never answered:\n{log_path.read_text()[-3000:]}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A page in headless Debian Chromium driven by Playwright (1280×900, 30 s default timeout).

    The test's own probes (``wait_for_function`` strings, injected axe-core) need eval, which the site's
    Content-Security-Policy forbids, so this page bypasses the CSP; ``csp_browser_page`` enforces it.
    """
    yield from _browser_page(monkeypatch, bypass_csp=True)


@pytest.fixture
def csp_browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Like ``browser_page`` but with the site's Content-Security-Policy enforced, as a real browser does."""
    yield from _browser_page(monkeypatch, bypass_csp=False)


def _browser_page(monkeypatch: pytest.MonkeyPatch, *, bypass_csp: bool) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in tests stay synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
        page.set_default_timeout(30_000)
        yield page
        browser.close()
