"""Audio for scoring requests: a clip id, a URL of this platform, or an upload, resolved to a file."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from annotate.catalog.models import Clip
from rm_service.services.common import RmServiceError


@dataclass
class ItemSpec:
    """One item as the API received it (before resolution to a file)."""

    clip_id: int | None = None
    url: str = ""
    upload: UploadedFile | None = None


def scoring_audio_resolve(*, spec: ItemSpec, label: str) -> dict[str, str]:
    """Turn a clip id, a platform URL or an upload into {"audio": path, "sha256": ...}.

    Raises:
        RmServiceError: naming ``label`` (e.g. "item 3 audio") with what is wrong.
    """
    if spec.upload is not None:
        return _store_upload(spec.upload, label=label)
    clip_id = spec.clip_id if spec.clip_id is not None else _clip_id_from_url(spec.url, label=label)
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None:
        raise RmServiceError(f"{label}: clip {clip_id} does not exist")
    return {"audio": clip_path(clip), "sha256": clip.sha256}


def clip_path(clip: Clip) -> str:
    """Absolute path of a clip's audio under MEDIA_ROOT."""
    return str(Path(settings.MEDIA_ROOT) / str(clip.file.name))


def _clip_id_from_url(url: str, *, label: str) -> int:
    from urllib.parse import urlsplit

    from django.urls import Resolver404, resolve

    parts = urlsplit(url)
    allowed = {urlsplit(settings.SITE_URL).hostname, *settings.ALLOWED_HOSTS, "testserver"}
    if parts.scheme not in ("http", "https", "") or (parts.hostname and parts.hostname not in allowed):
        raise RmServiceError(f"{label}: {url!r} is not a URL of this platform")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise RmServiceError(f"{label}: {url!r} does not name a clip of this platform") from None
    clip_id = match.kwargs.get("clip_id")
    if clip_id is None:
        raise RmServiceError(f"{label}: {url!r} does not name a clip of this platform")
    return int(clip_id)


def _store_upload(upload: UploadedFile, *, label: str) -> dict[str, str]:
    """Validate size, decodability and duration, then store content-addressed (so the cache can hit)."""
    import soundfile

    if upload.size is not None and upload.size > settings.UPLOAD_MAX_BYTES:
        raise RmServiceError(f"{label}: upload is {upload.size} bytes, over the {settings.UPLOAD_MAX_BYTES} limit")
    digest = hashlib.sha256()  # hashed while it is written, so the upload is read once
    with tempfile.NamedTemporaryFile(delete=False, dir=_uploads_dir(), suffix=".part") as tmp:
        for chunk in upload.chunks():
            digest.update(chunk)
            tmp.write(chunk)
    tmp_path = Path(tmp.name)
    try:
        info = soundfile.info(str(tmp_path))
    except (RuntimeError, soundfile.LibsndfileError):
        tmp_path.unlink(missing_ok=True)
        raise RmServiceError(f"{label}: {upload.name!r} is not decodable audio (WAV, FLAC, OGG or MP3)") from None
    if info.frames <= 0 or info.duration > settings.UPLOAD_MAX_SECONDS:
        tmp_path.unlink(missing_ok=True)
        raise RmServiceError(
            f"{label}: duration {info.duration:.1f} s is outside (0, {settings.UPLOAD_MAX_SECONDS:g}] s"
        )
    final = _uploads_dir() / f"{digest.hexdigest()}.{info.format.lower()}"
    shutil.move(str(tmp_path), final)
    return {"audio": str(final), "sha256": digest.hexdigest()}


def _uploads_dir() -> Path:
    path = Path(settings.RM_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path
