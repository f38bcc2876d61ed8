"""What viewers see of URLs that may carry secrets: query values masked.

A recipient's URL often holds its API key in the query (`?api_key=...`). Admins see URLs whole,
since they are the ones who edit them (a PUT of what GET showed must not write `***` back);
viewers see each query value as `***`, in the URL and in every URL inside an error message. A
secret in a URL's path cannot be told from a path and is shown: secrets belong in headers.
"""

from __future__ import annotations

import re

from mic.service.connections import shown_url

MASK = "***"

_URL_IN_TEXT = re.compile(r"https?://[^\s?#'\"<>]+\?[^\s#'\"<>]*?(?=:?(?:[\s'\"<>]|$))", re.IGNORECASE)
"""An http(s) URL with a query in free text (an error message), without a quote around it or
the `:` that may follow it."""


def masked_url(url: str) -> str:
    """`url` with each query value masked (`?api_key=***&b=***`; a bare `?token` → `?***`) and
    any user info masked; the scheme, host, path and parameter names stay."""
    url = shown_url(url)
    base, question, query = url.partition("?")
    if not question:
        return url
    query, hash_, fragment = query.partition("#")
    fields = []
    for field in query.split("&"):
        name, equals, value = field.partition("=")
        fields.append(f"{name}={MASK if value else ''}" if equals else (MASK if field else ""))
    return f"{base}?{'&'.join(fields)}{hash_}{MASK if fragment else ''}"


def masked_text(text: str | None) -> str | None:
    """`text` (an error message) with the query values of every URL in it masked."""
    if not text:
        return text
    return _URL_IN_TEXT.sub(lambda match: masked_url(match.group(0)), text)
