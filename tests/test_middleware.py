"""Security headers, pages without inline script, a clean deploy check, and no open redirect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from rm_service.models import ModelVersion

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "frontend" / "templates"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/healthz", "/api/v1/campaigns/1/next-assignment"])
def test_it_sends_the_security_headers_everywhere(client: Client, path: str) -> None:
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "microphone=()" in response["Permissions-Policy"] and "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_it_keeps_script_and_style_out_of_the_markup() -> None:
    """The CSP allows no inline script or style, so no template may rely on one."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for match in re.finditer(r"<script\b([^>]*)>", text):
            attributes = match.group(1)
            if "src=" not in attributes and 'type="application/json"' not in attributes:
                offenders.append(f"{template.name}: inline <script{attributes}>")
        offenders += [f"{template.name}: {m.group(0)}" for m in re.finditer(r"\son[a-z]+\s*=", text)]
        offenders += [f"{template.name}: {m.group(0)}" for m in re.finditer(r"\sstyle\s*=", text)]
    assert offenders == []


@pytest.mark.django_db
def test_it_serves_the_api_docs_from_local_files(admin_client: Client) -> None:
    page = admin_client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower() and "https://" not in html
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(src.startswith("/") for src in scripts)
    for src in scripts:
        # Static files are served by whitenoise after collectstatic; here the finders must know them.
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), src
        else:
            assert admin_client.get(src).status_code == 200, src


def test_it_passes_the_deploy_check_under_production_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "a-long-production-secret-" + "k7Qz9vX2mP4w" * 5,
        "ALLOWED_HOSTS": "annotate.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://annotate.example.org",
        "SECURE_COOKIES": "1",
        "BEHIND_TLS_PROXY": "1",
        "STATIC_MANIFEST": "1",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_it_never_redirects_off_site_after_a_registry_action(admin_client: Client) -> None:
    version = ModelVersion.objects.create(name="v", checkpoint_path="/x")
    url = f"/rm/versions/{version.pk}/deactivate/"
    for target in ("https://evil.example/phish", "//evil.example/x", "javascript:alert(1)"):
        response = admin_client.post(url, {"next": target})
        assert response.status_code == 302 and "evil" not in response["Location"], target
        assert not response["Location"].startswith("javascript")
    inside = admin_client.post(url, {"next": "/rm/"})
    assert inside["Location"] == "/rm/"
    missing_campaign = admin_client.post(f"/rm/versions/{version.pk}/predict/", {"campaign": "x"})
    assert missing_campaign.status_code == 404
