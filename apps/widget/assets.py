"""The embeddable widget's files, served by Django itself at stable URLs.

Customer sites paste one `<script src=".../widget/kefu-widget.js">` tag and never change it,
so the URL cannot carry a content hash; browsers revalidate with the ETag instead. Serving
through a view (rather than `STATIC_URL`) also works under plain Daphne, where Django's
staticfiles handler is not active, and with `DEBUG = False`. kefu-widget.js loads kefu-client.js
from the same folder, so both travel together here and after `collectstatic` alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.contrib.staticfiles import finders

# The only files the view will serve: an allow-list, so no path ever reaches the filesystem.
CONTENT_TYPES = {
    "kefu-widget.js": "text/javascript; charset=utf-8",
    # The protocol client, which kefu-widget.js loads from beside itself (no bundling step).
    "kefu-client.js": "text/javascript; charset=utf-8",
    "kefu-widget.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str
    content_type: str


# A module global, not the runtime's (apps.widget imports nothing of the layers, apps.core
# included): it holds file bytes only, no connection and nothing bound to a loop, and every
# read checks the file's mtime, so it is right in any process, after a fork or a restart.
_cache: dict[str, tuple[float, Asset]] = {}


def asset_load(*, name: str) -> Asset | None:
    """The named widget file, or None; re-read only when the file on disk changes."""
    content_type = CONTENT_TYPES.get(name)
    found = finders.find(f"kefu/{name}") if content_type else None
    if not found:
        return None
    path = Path(found)
    mtime = path.stat().st_mtime
    cached = _cache.get(name)
    if cached and cached[0] == mtime:
        return cached[1]
    body = path.read_bytes()
    asset = Asset(body=body, etag=hashlib.sha256(body).hexdigest()[:32], content_type=content_type)
    _cache[name] = (mtime, asset)
    return asset
