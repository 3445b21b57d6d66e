"""What of a system's response the assistant may see: the configured fields, strings and lists
cut short, the whole capped in size. Tool results are data; nothing here is an instruction."""

from __future__ import annotations

import json
from typing import Any

MAX_STRING = 500
MAX_ITEMS = 20
MAX_BYTES = 4000


def keep_fields(data: Any, paths: list[str]) -> Any:
    """Only the dotted `paths` of `data` (lists apply the rest of the path to each item)."""
    if not paths:
        return data
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return _pick(data, tree)


def _pick(data: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return data
    if isinstance(data, list):
        return [_pick(item, tree) for item in data]
    if isinstance(data, dict):
        return {k: _pick(data[k], sub) for k, sub in tree.items() if k in data}
    return data


def _cut(data: Any, items: int, chars: int) -> Any:
    if isinstance(data, str):
        return data if len(data) <= chars else data[:chars] + "…"
    if isinstance(data, list):
        return [_cut(v, items, chars) for v in data[:items]]
    if isinstance(data, dict):
        return {str(k)[:100]: _cut(v, items, chars) for k, v in list(data.items())[:100]}
    return data


def trim(data: Any, paths: list[str] | None = None, max_bytes: int = MAX_BYTES) -> Any:
    """The response as the assistant sees it: at most `max_bytes` of JSON."""
    data = keep_fields(data, paths or [])
    items, chars = MAX_ITEMS, MAX_STRING
    while True:
        cut = _cut(data, items, chars)
        if len(json.dumps(cut, ensure_ascii=False)) <= max_bytes or (items == 1 and chars <= 50):
            break
        items, chars = max(1, items // 2), max(50, chars // 2)
    if len(json.dumps(cut, ensure_ascii=False)) > max_bytes:
        return {"truncated": True, "preview": json.dumps(cut, ensure_ascii=False)[: max_bytes - 100]}
    return cut
