"""Request parsers that refuse hostile bodies with a 400 instead of crashing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_loads_bounded(text: str | bytes) -> Any:
    """``json.loads`` that raises ParseError for malformed or too deeply nested JSON."""
    limit = settings.API_JSON_MAX_DEPTH
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ParseError(f"JSON nested deeper than {limit} levels.") from exc
    except ValueError as exc:
        raise ParseError(f"Malformed JSON: {exc}") from exc
    if json_depth_exceeds(value, limit):
        raise ParseError(f"JSON nested deeper than {limit} levels.")
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with a nesting limit (``API_JSON_MAX_DEPTH``); the size limit is Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, which DRF enforces when it reads the body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("Empty JSON body.")
        return json_loads_bounded(raw)
