from __future__ import annotations

from django import template
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign
from annotate.labeling.selectors import Progress, annotator_progress

register = template.Library()


@register.simple_tag
def progress_for(campaign: Campaign, user: User) -> Progress:
    return annotator_progress(annotator=user, campaign=campaign)
