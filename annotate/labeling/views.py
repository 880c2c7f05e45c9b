"""Pages for annotators: hand out the next comparison, the listening page, and permission-checked audio."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any
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
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from annotate.catalog.audio import PRESENTATION_CONTENT_TYPE, AudioError
from annotate.catalog.models import Campaign, Clip, ClipRendition
from annotate.catalog.selectors import campaign_get_for_annotator, clip_rendition_for, comparison_get_for_staff
from annotate.catalog.services import clip_rendition_ensure
from annotate.errors import ApplicationError, NotFoundError
from annotate.labeling.models import Assignment, Skip
from annotate.labeling.selectors import (
    AssignmentNotFound,
    annotator_progress,
    assignment_audio_allowed,
    assignment_audio_source,
    assignment_current,
    assignment_get_for_annotator,
    assignment_lapsed_without_room,
    assignment_payload,
    comparison_dispute,
)
from annotate.labeling.services import (
    COMPARISON_FULL_MESSAGE,
    AnnotatorWithdrawn,
    AudioDeliveryLog,
    CampaignNotActive,
    OnboardingIncomplete,
    adjudication_delete,
    adjudication_set,
    assignment_next,
    audio_delivery_record,
)
from annotate.onboarding.selectors import onboarding_status, withdrawal_active
from annotate.people.authentication import ScopedTokenAuthentication
from annotate.people.models import ApiToken, Scope
from annotate.permissions import staff_required

_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# 32 KiB is 1.4 s of a 192 kbit/s rendition: the granularity of the delivery evidence.
_CHUNK = 32 * 1024
logger = logging.getLogger(__name__)


def _annotator(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required runs first"
    return user


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def campaign_next(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET resumes a live reservation or offers to start (it reserves nothing, so a link from another
    site changes no state); POST (CSRF-checked) reserves the next comparison and opens it."""
    try:
        campaign = campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
        if request.method == "GET":
            return _resume_or_offer(request, campaign)
        assignment = assignment_next(annotator=_annotator(request), campaign=campaign)
    except (NotFoundError, CampaignNotActive):
        raise Http404("No such campaign open for listening.") from None
    except OnboardingIncomplete as exc:
        return redirect(exc.url)
    except AnnotatorWithdrawn:
        return redirect("onboarding:withdraw", campaign_id=campaign_id)
    if assignment is None:
        progress = annotator_progress(annotator=_annotator(request), campaign=campaign)
        return render(request, "labeling/finished.html", {"campaign": campaign, "progress": progress})
    return redirect("labeling:listen", assignment_id=assignment.public_id)


def _resume_or_offer(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    onboarding = onboarding_status(annotator=_annotator(request), campaign=campaign)
    if onboarding.withdrawn:
        return redirect("onboarding:withdraw", campaign_id=campaign.pk)
    if onboarding.missing is not None:
        return redirect(onboarding.missing.url)
    current = assignment_current(annotator=_annotator(request), campaign=campaign, now=timezone.now())
    if current is not None:
        return redirect("labeling:listen", assignment_id=current.public_id)
    progress = annotator_progress(annotator=_annotator(request), campaign=campaign)
    template = "labeling/start.html" if progress.remaining else "labeling/finished.html"
    return render(request, template, {"campaign": campaign, "progress": progress})


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


def login_or_token_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """``login_required`` that also accepts the REST API's ``Authorization: Token …``.

    Pipelines hear what they judge with the same token they reserve and vote with; a bad token is a 401,
    and a browser without a session is still sent to log in.
    """
    page_view = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token_header = get_authorization_header(request)  # type: ignore[arg-type]  # reads only request.META
        if not request.user.is_authenticated and token_header.startswith(b"Token "):
            try:
                authenticated = ScopedTokenAuthentication().authenticate(request)  # type: ignore[arg-type]
            except AuthenticationFailed as exc:
                response = HttpResponse(str(exc.detail), status=401, content_type="text/plain")
                response["WWW-Authenticate"] = "Token"
                return response
            if authenticated is not None:
                token = authenticated[1]
                if isinstance(token, ApiToken) and token.scope != Scope.ANNOTATING:
                    raise PermissionDenied("This token's scope doesn't allow annotating.")
                request.user = authenticated[0]
        return page_view(request, *args, **kwargs)

    return wrapper


@login_or_token_required
@require_GET
def assignment_audio(request: HttpRequest, assignment_id: UUID, side: str) -> HttpResponseBase:
    """Stream the presentation rendition of one clip of an assignment, by displayed side, with single ranges.

    Annotators never get the imported file: every clip of a campaign is served in one codec profile,
    loudness-matched and without tags, under identical headers. What is delivered to the assignment's own
    annotator is recorded as listening evidence (staff previews are not).
    """
    try:
        source = assignment_audio_source(
            annotator=request.user, assignment_id=assignment_id, side=side, allow_staff=True
        )
    except AssignmentNotFound:
        raise Http404("No such assignment for you.") from None
    assignment = source.assignment
    if not assignment_audio_allowed(user=_annotator(request), assignment=assignment):
        raise PermissionDenied("This comparison is closed; its audio is no longer available to you.")
    if source.clip_id is None:
        raise Http404("No such clip.")
    rendition = source.rendition or _rendition(
        Clip.objects.get(pk=source.clip_id), Campaign.objects.get(pk=assignment.comparison.campaign_id)
    )
    evidence_for = assignment if assignment.annotator_id == request.user.pk else None
    return _serve_rendition(request, rendition, assignment=evidence_for, side=side)


def _rendition(clip: Clip, campaign: Campaign) -> ClipRendition:
    rendition = clip_rendition_for(clip=clip, campaign=campaign)
    if rendition is not None:
        return rendition
    # Import and `manage.py make_renditions` make them ahead; this only covers clips they missed.
    logger.warning("making the missing presentation rendition of %s on request", clip)
    try:
        rendition, _ = clip_rendition_ensure(clip=clip, campaign=campaign)
    except AudioError:
        logger.exception("no presentation rendition for %s", clip)
        raise Http404("Audio file missing.") from None
    return rendition


def _media_path(name: str) -> Path:
    """A stored file, refusing anything that resolves outside MEDIA_ROOT (a crafted or corrupted path)."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / name).resolve()
    if not name or not path.is_relative_to(root) or not path.is_file():
        raise Http404("Audio file missing.")
    return path


def _serve_rendition(
    request: HttpRequest, rendition: ClipRendition, *, assignment: Assignment | None, side: str
) -> HttpResponseBase:
    path = _media_path(str(rendition.file.name or ""))
    size = path.stat().st_size
    header = request.headers.get("Range", "")
    byte_range = parse_range(header, size) if header else (0, size - 1)
    if settings.AUDIO_ACCEL_REDIRECT_PREFIX:
        # nginx streams the bytes (Range included) from an `internal` location; see deploy/nginx.conf.
        # Django never sees them go out, so the requested range is what counts as delivered.
        if assignment is not None and byte_range is not None:
            start, end = byte_range
            audio_delivery_record(
                assignment=assignment,
                side=side,
                rendition=rendition,
                first_byte=start,
                length=end - start + 1,
                via_accel_redirect=True,
            )
        relative = path.relative_to(Path(settings.MEDIA_ROOT).resolve()).as_posix()
        redirect_to_nginx = HttpResponse(content_type=PRESENTATION_CONTENT_TYPE)
        redirect_to_nginx["X-Accel-Redirect"] = settings.AUDIO_ACCEL_REDIRECT_PREFIX.rstrip("/") + "/" + quote(relative)
        return _audio_headers(redirect_to_nginx)
    if byte_range is None:
        refused = HttpResponse(status=416, content_type="text/plain")
        refused.content = b"Requested range not satisfiable."
        refused["Content-Range"] = f"bytes */{size}"
        return _audio_headers(refused)
    start, end = byte_range
    log = None
    if assignment is not None:
        log = AudioDeliveryLog(assignment=assignment, side=side, rendition=rendition, first_byte=start)
    stream = _read(path, start, end - start + 1, log)
    response: StreamingHttpResponse
    if header:
        response = StreamingHttpResponse(stream, status=206, content_type=PRESENTATION_CONTENT_TYPE)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    else:
        response = StreamingHttpResponse(stream, content_type=PRESENTATION_CONTENT_TYPE)
    response["Content-Length"] = str(end - start + 1)
    return _audio_headers(response)


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


def _read(path: Path, start: int, length: int, log: AudioDeliveryLog | None) -> Iterator[bytes]:
    """The bytes of ``path`` from ``start``, recording each chunk as delivered when it is handed out.

    A chunk counts once it is handed to the server to send, so an honest player is never short of credit;
    a client that stops reading gains at most one chunk plus what the sockets' buffers accepted.
    """
    sent = 0
    with path.open("rb") as handle:
        handle.seek(start)
        while sent < length:
            chunk = handle.read(min(_CHUNK, length - sent))
            if not chunk:
                return
            sent += len(chunk)
            if log is not None:
                log.handed_out(sent)
            yield chunk


def _audio_headers(response: HttpResponseBase) -> HttpResponseBase:
    response["Accept-Ranges"] = "bytes"
    # Per-user content: no shared caches; the browser may keep it while the annotator works on the page.
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def comparison_adjudicate(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """Staff resolve a disputed comparison: instruction, both clips and the reference, every vote, the resolution."""
    comparison = comparison_get_for_staff(user=request.user, comparison_id=comparison_id)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "clear":
                adjudication_delete(comparison=comparison)
                messages.info(request, "The resolution was removed; the votes' majority is the label again.")
            else:
                adjudication_set(
                    comparison=comparison,
                    user=_annotator(request),
                    alignment=request.POST.get("alignment"),
                    musicality=request.POST.get("musicality"),
                    note=request.POST.get("note", ""),
                )
                messages.info(request, "Resolution saved: exports and the model-vs-human view use it as the label.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            return redirect("labeling:adjudicate", comparison_id=comparison.pk)
    dispute = comparison_dispute(comparison=comparison)
    choices = [("a", "clip_a"), ("b", "clip_b"), ("t", "no preference")]
    return render(
        request, "labeling/adjudicate.html", {"comparison": comparison, "dispute": dispute, "choices": choices}
    )
