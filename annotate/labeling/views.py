"""Pages for annotators: hand out the next comparison, the listening page, and permission-checked audio."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from annotate.catalog.models import Clip
from annotate.labeling.models import Assignment, Skip
from annotate.labeling.selectors import (
    AssignmentNotFound,
    CampaignNotFound,
    annotator_progress,
    assignment_audio_allowed,
    assignment_clip,
    assignment_get_for_annotator,
    assignment_lapsed_without_room,
    assignment_payload,
    campaign_get_for_labeling,
)
from annotate.labeling.services import (
    COMPARISON_FULL_MESSAGE,
    AnnotatorWithdrawn,
    CampaignNotActive,
    OnboardingIncomplete,
    assignment_next,
)
from annotate.onboarding.selectors import withdrawal_active

CONTENT_TYPES = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg", "MP3": "audio/mpeg"}
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _annotator(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required runs first"
    return user


@login_required
@require_GET
def campaign_next(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Reserve (or resume) the annotator's next comparison and open it; a finished campaign says so."""
    try:
        campaign = campaign_get_for_labeling(user=request.user, campaign_id=campaign_id)
        assignment = assignment_next(annotator=_annotator(request), campaign=campaign)
    except (CampaignNotFound, CampaignNotActive):
        raise Http404("No such campaign open for listening.") from None
    except OnboardingIncomplete as exc:
        return redirect(exc.url)
    except AnnotatorWithdrawn:
        return redirect("onboarding:withdraw", campaign_id=campaign_id)
    if assignment is None:
        progress = annotator_progress(annotator=_annotator(request), campaign=campaign)
        return render(request, "labeling/finished.html", {"campaign": campaign, "progress": progress})
    return redirect("labeling:listen", assignment_id=assignment.public_id)


# Never from a cache: after a vote, Back must ask the server, which sends a voted comparison to the next one.
@never_cache
@login_required
@require_GET
def listen(request: HttpRequest, assignment_id: UUID) -> HttpResponse:
    try:
        assignment = assignment_get_for_annotator(annotator=request.user, assignment_id=assignment_id)
    except AssignmentNotFound:
        raise Http404("No such assignment for you.") from None
    campaign = assignment.comparison.campaign
    if withdrawal_active(annotator=_annotator(request), campaign=campaign) is not None:
        return redirect("onboarding:withdraw", campaign_id=campaign.pk)
    if assignment.status in (Assignment.Status.VOTED, Assignment.Status.SKIPPED):
        return redirect("labeling:campaign-next", campaign_id=campaign.pk)
    if assignment_lapsed_without_room(assignment=assignment, now=timezone.now()):
        # Don't let anyone listen for nothing: say why and hand out the next comparison.
        messages.info(request, COMPARISON_FULL_MESSAGE.replace("Your answer was not recorded; p", "P"))
        return redirect("labeling:campaign-next", campaign_id=campaign.pk)
    context = {
        "assignment": assignment,
        "payload": assignment_payload(assignment=assignment),
        "instruction": assignment.comparison.instruction,
        "campaign": campaign,
        "progress": annotator_progress(annotator=_annotator(request), campaign=campaign),
        "skip_reasons": Skip.Reason.choices,
    }
    return render(request, "labeling/listen.html", context)


@login_required
@require_GET
def assignment_audio(request: HttpRequest, assignment_id: UUID, side: str) -> HttpResponseBase:
    """Stream one clip of an assignment, by displayed side, with single-range support."""
    try:
        assignment = assignment_get_for_annotator(annotator=request.user, assignment_id=assignment_id, allow_staff=True)
    except AssignmentNotFound:
        raise Http404("No such assignment for you.") from None
    if not assignment_audio_allowed(user=_annotator(request), assignment=assignment):
        raise PermissionDenied("This comparison is closed; its audio is no longer available to you.")
    clip = assignment_clip(assignment=assignment, side=side)
    if clip is None:
        raise Http404("No such clip.")
    return _serve_clip(request, clip)


def _clip_path(clip: Clip) -> Path:
    """The clip's file, refusing anything that resolves outside MEDIA_ROOT (a crafted or corrupted path)."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / str(clip.file.name or "")).resolve()
    if not clip.file.name or not path.is_relative_to(root) or not path.is_file():
        raise Http404("Audio file missing.")
    return path


def _serve_clip(request: HttpRequest, clip: Clip) -> HttpResponseBase:
    path = _clip_path(clip)
    content_type = CONTENT_TYPES.get(clip.format, "application/octet-stream")
    if settings.AUDIO_ACCEL_REDIRECT_PREFIX:
        # nginx streams the bytes (Range included) from an `internal` location; see deploy/nginx.conf.
        relative = path.relative_to(Path(settings.MEDIA_ROOT).resolve()).as_posix()
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.AUDIO_ACCEL_REDIRECT_PREFIX.rstrip("/") + "/" + quote(relative)
        return _audio_headers(response)
    size = path.stat().st_size
    header = request.headers.get("Range", "")
    if not header:
        full = StreamingHttpResponse(_read(path, 0, size), content_type=content_type)
        full["Content-Length"] = str(size)
        return _audio_headers(full)
    byte_range = parse_range(header, size)
    if byte_range is None:
        response = HttpResponse(status=416, content_type="text/plain")
        response.content = b"Requested range not satisfiable."
        response["Content-Range"] = f"bytes */{size}"
        return _audio_headers(response)
    start, end = byte_range
    partial = StreamingHttpResponse(_read(path, start, end - start + 1), status=206, content_type=content_type)
    partial["Content-Length"] = str(end - start + 1)
    partial["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _audio_headers(partial)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) for one ``bytes=`` range, or None when it is malformed or unsatisfiable."""
    match = _SINGLE_RANGE.match(header.strip())
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        return (max(0, size - length), size - 1) if length > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return None
    return start, end


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _audio_headers(response: HttpResponseBase) -> HttpResponseBase:
    response["Accept-Ranges"] = "bytes"
    # Per-user content: no shared caches; the browser may keep it while the annotator works on the page.
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
