"""Parsers: bytes of a Markdown, text, HTML or PDF file -> title + sections under headings.

Every failure raises `UnsupportedDocument` with a message a person can act on; ingestion stores
it as the document's failure reason.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from .errors import UnsupportedDocument

PARSER_BY_SUFFIX = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SUPPORTED = ".md, .txt, .html or .pdf"


@dataclass(frozen=True)
class Section:
    heading_path: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not any(s.text.strip() for s in self.sections)


def parser_for(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in PARSER_BY_SUFFIX:
        shown = f"'{suffix}'" if suffix else "without an extension"
        raise UnsupportedDocument(
            f"{filename}: file type {shown} is not supported. Convert it to one of {SUPPORTED} "
            "and ingest it again."
        )
    return PARSER_BY_SUFFIX[suffix]


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    kind = parser_for(filename)
    fallback_title = _title_from_filename(filename)
    if kind == "pdf":
        return parse_pdf(data, filename=filename, fallback_title=fallback_title)
    text = decode_text(data, filename=filename)
    if kind == "markdown":
        return parse_markdown(text, fallback_title=fallback_title)
    if kind == "html":
        return parse_html(text, fallback_title=fallback_title)
    return parse_text(text, fallback_title=fallback_title)


def decode_text(data: bytes, *, filename: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(
            f"{filename} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start} is "
            "invalid). Re-save it with UTF-8 encoding and ingest it again."
        ) from None
    if "\x00" in text:
        raise UnsupportedDocument(
            f"{filename} contains NUL bytes, so it is binary rather than text. Export its text as "
            f"one of {SUPPORTED} and ingest that."
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _title_from_filename(filename: str) -> str:
    stem = PurePath(filename).stem
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or filename


# --- plain text ---------------------------------------------------------------------------


def parse_text(text: str, *, fallback_title: str) -> ParsedDocument:
    # Runs of spaces (column layouts, indentation) carry no meaning for search.
    text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")).strip()
    return ParsedDocument(title=fallback_title, sections=[Section((), text)] if text else [])


# --- Markdown -----------------------------------------------------------------------------

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def _clean_markdown_inline(text: str) -> str:
    # Link targets and emphasis markers are noise to both the embedder and full-text search.
    return _EMPHASIS.sub("", _LINK.sub(r"\1", text))


def parse_markdown(text: str, *, fallback_title: str) -> ParsedDocument:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    lines = text.split("\n")
    title = ""
    stack: list[tuple[int, str]] = []  # (level, heading) of the headings we are under
    sections: list[Section] = []
    blocks: list[str] = []

    def flush() -> None:
        body = "\n\n".join(b for b in blocks if b.strip())
        if body.strip():
            sections.append(Section(tuple(h for _, h in stack), body.strip()))
        blocks.clear()

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            flush()
            level = int(tok.tag[1])
            heading = _clean_markdown_inline(tokens[i + 1].content).strip()
            if level == 1 and not title:
                title = heading  # the document's title, not a section of it
            else:
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading))
            i += 3
            continue
        if tok.level == 0 and tok.map and not tok.type.endswith("_close"):
            start, end = tok.map
            block = "\n".join(lines[start:end]).strip()
            if tok.type != "hr" and block:
                blocks.append(_clean_markdown_inline(block))
        i += 1
    flush()
    return ParsedDocument(title=title or fallback_title, sections=sections)


# --- HTML ---------------------------------------------------------------------------------


def parse_html(html: str, *, fallback_title: str) -> ParsedDocument:
    import trafilatura

    # Main content only: trafilatura drops navigation, footers and boilerplate, keeping headings.
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    markdown = trafilatura.extract(html, output_format="markdown", include_links=False, favor_recall=True)
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or ""
    if not markdown or not markdown.strip():
        markdown = _html_to_markdown_bs4(html)
    parsed = parse_markdown(markdown or "", fallback_title=title or fallback_title)
    return ParsedDocument(title=title or parsed.title, sections=parsed.sections)


def _html_to_markdown_bs4(html: str) -> str:
    """Fallback for pages trafilatura finds no article in (short pages, fragments)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    parts: list[str] = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td"]):
        text = " ".join(el.get_text(" ", strip=True).split())
        if not text:
            continue
        if el.name.startswith("h"):
            parts.append("#" * int(el.name[1]) + " " + text)
        elif el.name == "li":
            parts.append("- " + text)
        else:
            parts.append(text)
    return "\n\n".join(parts)


# --- PDF ----------------------------------------------------------------------------------


def parse_pdf(data: bytes, *, filename: str, fallback_title: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedDocument(
                f"{filename} is a password-protected PDF. Save an unprotected copy and ingest that."
            )
        pages = [(page.extract_text() or "") for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnsupportedDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UnsupportedDocument(
            f"{filename} could not be read as a PDF ({type(exc).__name__}: {exc}). The file may be "
            "damaged or truncated: export it again from its source and ingest the new copy."
        ) from None
    sections = [
        Section((f"Page {n}",), re.sub(r"[ \t]+", " ", text).strip())
        for n, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if not sections:
        raise UnsupportedDocument(
            f"{filename} has no extractable text (it may be scanned images). Run OCR on it, or "
            "ingest its text as .txt or .md."
        )
    return ParsedDocument(title=meta_title.strip() or fallback_title, sections=sections)
