import pytest

from apps.knowledge.errors import UnsupportedDocument
from apps.knowledge.parsers import Section, parse
from tests.support.documents import make_pdf


def test_markdown_keeps_heading_path_and_cleans_links():
    text = (
        "# Returns policy\n\nReturn within **30 days**.\n\n## Exceptions\n\n- made-to-order items\n"
        "- see [gift cards](https://x.example/gc)\n\n### Bedding\n\nOnce opened, no returns.\n\n"
        "## Costs\n\nFree from the UK.\n"
    )
    doc = parse(text.encode(), filename="returns.md")
    assert doc.title == "Returns policy"
    assert doc.sections == [
        Section((), "Return within 30 days."),
        Section(("Exceptions",), "- made-to-order items\n- see gift cards"),
        Section(("Exceptions", "Bedding"), "Once opened, no returns."),
        Section(("Costs",), "Free from the UK."),
    ]


def test_text_uses_the_file_name_as_title_and_collapses_spaces():
    doc = parse(b"First   line\r\n\r\n   second\tline  \n", filename="shipping_times.txt")
    assert doc.title == "Shipping times"
    assert doc.sections == [Section((), "First line\n\nsecond line")]


def test_html_keeps_main_content_only():
    html = (
        "<html><head><title>Shipping | Shop</title></head><body>"
        "<nav><a href='/'>Home</a><a href='/sale'>Sale</a></nav><main><h1>Shipping</h1>"
        "<p>We ship within two business days from our warehouse in Leeds.</p><h2>Express</h2>"
        "<p>Express orders placed before 2 pm arrive the next working day.</p></main>"
        "<footer>Copyright 2024 Shop Ltd. All rights reserved.</footer></body></html>"
    )
    doc = parse(html.encode(), filename="shipping.html")
    assert doc.title == "Shipping"  # trafilatura drops the site name
    assert doc.sections == [
        Section((), "We ship within two business days from our warehouse in Leeds."),
        Section(("Express",), "Express orders placed before 2 pm arrive the next working day."),
    ]


def test_pdf_text_per_page():
    doc = parse(make_pdf("Warranty terms", "Furniture is covered for five years."), filename="warranty.pdf")
    assert doc.title == "Warranty"
    assert doc.sections == [Section(("Page 1",), "Warranty terms\nFurniture is covered for five years.")]


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"%PDF-1.4\n1 0 obj garbage", "broken.pdf", "broken.pdf could not be read as a PDF"),
        (
            b"caf\xe9 menu",
            "menu.txt",
            "menu.txt is not UTF-8 text (byte 0xe9 at offset 3 is invalid). Re-save it with UTF-8 encoding "
            "and ingest it again.",
        ),
        (
            b"PK\x03\x04",
            "report.docx",
            "report.docx: file type '.docx' is not supported. Convert it to one of .md, .txt, .html or .pdf "
            "and ingest it again.",
        ),
        (b"abc", "README", "README: file type without an extension is not supported."),
    ],
)
def test_unreadable_files_say_what_to_do(data, filename, reason):
    with pytest.raises(UnsupportedDocument) as caught:
        parse(data, filename=filename)
    assert str(caught.value).startswith(reason)
