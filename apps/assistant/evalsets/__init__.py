"""Dev sets for the assistant's answers over the demo help center (see README.md here).

Each question belongs to one half, "tune" or "report", by a hash of its id, so thresholds are
chosen on one half and the figures quoted come from the other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

EVALSET_DIR = Path(__file__).resolve().parent
NAMES = ("demo_inscope", "demo_offtopic")
HALVES = ("tune", "report")


def half_of(qid: str) -> str:
    """'tune' or 'report' by the parity of the first byte of sha1(id): stable across runs and machines."""
    return "tune" if hashlib.sha1(qid.encode("utf-8")).digest()[0] % 2 == 0 else "report"


def load_questions(name: str, *, half: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    """The questions of `name` (a file stem here, e.g. "demo_inscope"), or of `path` if given;
    only one half when `half` is "tune" or "report" (None or "all" keeps every question)."""
    if half not in (None, "all", *HALVES):
        raise ValueError(f"half must be one of tune, report, all; got {half!r}")
    source = path or EVALSET_DIR / f"{name}.jsonl"
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if half in HALVES:
        rows = [row for row in rows if half_of(row["_id"]) == half]
    return rows
