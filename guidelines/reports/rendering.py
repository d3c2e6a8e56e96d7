"""PDF building blocks on WeasyPrint: documents from templates, the large tables in page-sized
chunks, and the assembly into one tagged PDF/A-3a (declared PDF/UA-1 too) with pikepdf.

Why the tables are lines of monospaced text and not HTML tables: WeasyPrint lays out every table
cell as a box, 7.5–10 ms per row of eight cells, so 100,000 rows would take over six minutes on two
cores and gigabytes of memory in one layout. A row as one preformatted line costs about 1.8 ms, and
with a fixed line height every page holds exactly ROWS_PER_PAGE rows. Page counts are therefore
known before rendering, chunks can be rendered in parallel as separate documents that start at
their absolute page number, and "page x of y" is right on every page.

Names, titles and texts come from HR imports and editors, so nothing they write may reach WeasyPrint
as markup or make it load anything:

- every value is escaped for where it lands: HTML by Django's autoescaping, the running header and
  footer strings in the <style> block by css_string() (CSS hex escapes for everything but letters,
  digits and a few punctuation marks, so no quote, backslash, line break, "<" or "</style" can appear);
- WeasyPrint loads resources only through url_fetcher(): the files under the project's static/
  folder and nothing else. file:, http(s):, data:, ftp: and any other URL is refused and written to
  the security log (pdf_fetch_refused). Links in guideline texts stay links; they are not fetched.
"""

import html
import math
import mimetypes
import unicodedata
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import segno
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from ..security import security_event

ROWS_PER_PAGE = settings.REPORT_ROWS_PER_PAGE
MONO_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
# The only files a report may load (images, stylesheets): the project's own static assets. Relative
# URLs in the report templates resolve against this folder.
STATIC_DIR = Path(settings.BASE_DIR) / "static"
LOGGED_URL_LENGTH = 120


def page_count(rows):
    return max(1, math.ceil(rows / ROWS_PER_PAGE)) if rows else 0


def chunks(rows):
    """[(first row, number of rows)] covering `rows` in chunks of settings.REPORT_CHUNK_ROWS. Chunks
    hold whole pages: a partly filled page in the middle of a table would shift the page count."""
    size = settings.REPORT_CHUNK_ROWS
    return [(start, min(size, rows - start)) for start in range(0, rows, size)]


# Lines of the monospaced tables ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _mono_characters():
    from fontTools.ttLib import TTFont  # a WeasyPrint dependency

    try:
        return frozenset(TTFont(MONO_FONT).getBestCmap())
    except OSError:  # another font layout: treat everything beyond ASCII as needing its own box
        return frozenset(range(32, 127))


def _one_cell_each(text):
    """Whether every character takes exactly one cell of the monospaced font."""
    mono = _mono_characters()
    return all(
        ord(c) in mono and not unicodedata.combining(c) and unicodedata.category(c) not in ("Mn", "Me", "Cf")
        and unicodedata.east_asian_width(c) not in ("W", "F")
        for c in text
    )


def fit(value, width):
    # A cell is one line: a line break in a name (the HR system allows one) would hide the rest of it.
    text = " ".join(unicodedata.normalize("NFC", str(value if value is not None else "")).split())
    if _one_cell_each(text):
        return html.escape(text[: width - 1] + "…" if len(text) > width else text.ljust(width))
    # A name in another script: its own box of the column's width keeps the columns aligned.
    return f'<span class="cell" style="width:{width}ch">{html.escape(text)}</span>'


def line(values, widths):
    return "  ".join(fit(value, width) for value, width in zip(values, widths, strict=True)).rstrip()


# Escaping for the stylesheet ----------------------------------------------------------------------------

# Characters written as themselves in a CSS string; everything else becomes a hex escape.
CSS_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:-_()/")


def css_string(text):
    """`text` as a double-quoted CSS string that is safe inside an HTML <style> element.

    Every character outside CSS_SAFE is written as a six-digit hex escape (\\00003c for "<"), so
    quotes, backslashes, line breaks, "<", ">" and "&" never appear literally: the string cannot end
    early, and "</style" cannot end the style element. Six digits end an escape by themselves, but
    CSS also swallows one whitespace character after an escape, so a space right after one is
    escaped too. The result is marked safe for templates (no |safe needed), as it is already escaped.
    """
    parts, after_escape = [], False
    for character in str(text):
        if character in CSS_SAFE and not (after_escape and character == " "):
            parts.append(character)
            after_escape = False
        else:
            # CSS cannot carry U+0000 (it reads it as U+FFFD) nor lone surrogates: say so explicitly.
            code = ord(character)
            parts.append(f"\\{0xFFFD if code == 0 or 0xD800 <= code <= 0xDFFF else code:06x}")
            after_escape = True
    return mark_safe('"' + "".join(parts) + '"')  # every character is escaped above


# Loading resources ------------------------------------------------------------------------------------


class FetchRefused(ValueError):
    """A report tried to load something other than a static asset (WeasyPrint skips the resource)."""


def static_file(url):
    """The file under STATIC_DIR that a file: URL names, or None for any other URL or file.

    The path is decoded and resolved (".." and symbolic links followed) before it is checked, so
    "static/../settings.py", %2e%2e and a link pointing out of the folder all stay outside."""
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(parts.path)).resolve(strict=True)
    except (OSError, ValueError):  # missing, unreadable, a NUL byte, a malformed URL
        return None
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        return None
    return path


def _shortened(url):
    return url if len(url) <= LOGGED_URL_LENGTH else url[:LOGGED_URL_LENGTH] + "…"


def refuse(url, purpose=""):
    """Write the refusal to the security log and raise FetchRefused."""
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    security_event("pdf_fetch_refused", outcome="denied", scheme=scheme[:20], url=_shortened(url),
                   document=purpose)
    raise FetchRefused(f"reports load only static assets; refused {_shortened(url)}")


@lru_cache(maxsize=1)
def _fetcher_class():
    # WeasyPrint is imported when a report is made, not when Django starts.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        """WeasyPrint 70's URL fetcher (a URLFetcher subclass whose fetch() returns a
        URLFetcherResponse), serving the project's static files and refusing everything else.
        It never opens a connection: the parent class's opener is not used."""

        def __init__(self, purpose=""):
            super().__init__(allowed_protocols=("file",), allow_redirects=False)
            self.purpose = purpose

        def fetch(self, url, headers=None):
            path = static_file(url)
            if path is None:
                refuse(url, self.purpose)
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})

    return StaticOnlyFetcher


def url_fetcher(purpose=""):
    """The url_fetcher for every WeasyPrint HTML, CSS and Attachment; `purpose` names the document
    in the security log."""
    return _fetcher_class()(purpose=purpose)


def base_url():
    """Relative URLs in report templates name static assets."""
    return STATIC_DIR.as_uri() + "/"


# Documents -------------------------------------------------------------------------------------------


def qr_svg(text):
    """segno writes the text into the QR code's modules (path data), not into the markup."""
    return segno.make(text, error="m").svg_inline(scale=3, border=2)


def _html(template, context, *, first_page, total_pages):
    if context.get("orientation", "landscape") not in ("portrait", "landscape"):
        raise ValueError("orientation is portrait or landscape")  # it goes into the stylesheet as it is
    return render_to_string(template, {**context, "first_page": int(first_page), "total_pages": int(total_pages)})


def html_document(source, *, purpose=""):
    """A WeasyPrint HTML document from markup, loading resources through url_fetcher() only."""
    from weasyprint import HTML

    return HTML(string=source, base_url=base_url(), url_fetcher=url_fetcher(purpose))


def render(template, context, *, first_page=1, total_pages=0, language="en"):
    """A WeasyPrint document (laid out, not written) of a report template."""
    with translation.override(language):
        source = _html(template, context, first_page=first_page, total_pages=total_pages)
    return html_document(source, purpose=template).render()


def table_document(*, heading, widths, rows, context, first_page, total_pages, language):
    """One chunk of a monospaced table: ROWS_PER_PAGE lines per page, the header on each page."""
    header = line(heading, widths)
    pages = [
        {"header": header, "lines": "\n".join(line(row, widths) for row in rows[start:start + ROWS_PER_PAGE])}
        for start in range(0, len(rows), ROWS_PER_PAGE)
    ]
    document = render("reports/table.html", {**context, "pages": pages}, first_page=first_page,
                      total_pages=total_pages, language=language)
    if len(document.pages) != page_count(len(rows)):
        # The page arithmetic is what keeps "page x of y" right; never hand out a report where it failed.
        raise RuntimeError(f"a table chunk took {len(document.pages)} pages instead of {page_count(len(rows))}")
    return document


def write_front(document, path, *, attachments):
    """The first part carries the archival identity: PDF/A-3a (tagged, level A), metadata, the
    embedded files."""
    from weasyprint import Attachment

    now = timezone.now().astimezone(UTC).replace(microsecond=0)
    files = [
        Attachment(string=content, name=name, description=description, relationship=relationship,
                   created=now, modified=now, url_fetcher=url_fetcher("attachment"))
        for name, content, description, relationship in attachments
    ]
    document.write_pdf(path, pdf_variant="pdf/a-3a", attachments=files)


def write_part(document, path):
    """A part behind the front: tagged (PDF/UA-1), so that assemble() can join its structure tree
    to the front's. Its own metadata is dropped there; the front's is the document's."""
    document.write_pdf(path, pdf_variant="pdf/ua-1")


def signing_configured():
    return bool(settings.REPORT_SIGNING_CERT and settings.REPORT_SIGNING_KEY)


def sign(source, target):
    """PAdES signature (ETSI.CAdES.detached) as an incremental update, which keeps PDF/A intact."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = signers.SimpleSigner.load(
        settings.REPORT_SIGNING_KEY, settings.REPORT_SIGNING_CERT,
        key_passphrase=settings.REPORT_SIGNING_KEY_PASSPHRASE.encode() or None,
    )
    metadata = signers.PdfSignatureMetadata(field_name="EvidenceSignature", subfilter=fields.SigSeedSubFilter.PADES,
                                            md_algorithm="sha256")
    with open(source, "rb") as unsigned, open(target, "wb") as signed:
        signers.PdfSigner(metadata, signer=signer).sign_pdf(IncrementalPdfFileWriter(unsigned, strict=False),
                                                             output=signed)


def _join_structure(pdf, source, pages, key_offset):
    """Append the structure tree of `source`, whose `pages` were just copied into `pdf`, to the
    tree of `pdf`: its elements go under pdf's Document element, its parent-tree keys (the
    /StructParents of pages and /StructParent of links) move up by `key_offset`. Returns the next
    free key. Screen readers and PDF/UA checkers read the pages' text through this tree, so a
    part whose tree was not joined would be silent."""
    import pikepdf

    root, joined = pdf.Root.StructTreeRoot, source.Root.StructTreeRoot
    (document,), (part_document,) = root.K, joined.K
    kids = list(part_document.K)
    for kid in kids:
        # Without its parent, copying an element does not drag the part's whole tree root along.
        del kid.P
    for kid in kids:
        copied = pdf.copy_foreign(kid)
        copied.P = document
        document.K.append(copied)
    numbers, last = joined.ParentTree.Nums, -1
    for index in range(0, len(numbers), 2):
        key, value = int(numbers[index]), numbers[index + 1]
        if isinstance(value, pikepdf.Array):
            if any(element.objgen == part_document.objgen for element in value):
                raise ValueError("marked content directly under the Document element cannot be joined")
            value = pikepdf.Array([pdf.copy_foreign(element) for element in value])
        else:
            value = pdf.copy_foreign(value)
        root.ParentTree.Nums.extend([key + key_offset, value])
        last = max(last, key)
    for page in pages:
        if "/StructParents" in page.obj:
            page.obj.StructParents = int(page.obj.StructParents) + key_offset
        for annotation in page.obj.get("/Annots", []):
            if "/StructParent" in annotation:
                annotation.StructParent = int(annotation.StructParent) + key_offset
    return key_offset + last + 1


# PDF/UA-1's identification, and the PDF/A extension schema that PDF/A-2 and -3 require for a
# property outside XMP's predefined schemas (as LibreOffice writes it for PDF/A with PDF/UA).
UNIVERSAL_ACCESSIBILITY_XMP = """<rdf:Description rdf:about=""
  xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/"
  xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
  xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
  xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
 <pdfuaid:part>1</pdfuaid:part>
 <pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
  <pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI>
  <pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>
  <pdfaSchema:schema>PDF/UA identification schema</pdfaSchema:schema>
  <pdfaSchema:property><rdf:Seq><rdf:li rdf:parseType="Resource">
   <pdfaProperty:category>internal</pdfaProperty:category>
   <pdfaProperty:description>PDF/UA version identifier</pdfaProperty:description>
   <pdfaProperty:name>part</pdfaProperty:name>
   <pdfaProperty:valueType>Integer</pdfaProperty:valueType>
  </rdf:li></rdf:Seq></pdfaSchema:property>
 </rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
"""


def _declare_universal_accessibility(pdf):
    """Declare PDF/UA-1 beside PDF/A in the XMP (WeasyPrint writes one or the other) and have
    viewers show the title rather than the file name."""
    import pikepdf

    xmp = pdf.Root.Metadata.read_bytes().decode()
    if "pdfuaid:part" not in xmp:
        end = xmp.rindex("</rdf:RDF>")
        pdf.Root.Metadata.write((xmp[:end] + UNIVERSAL_ACCESSIBILITY_XMP + xmp[end:]).encode())
    preferences = pdf.Root.get("/ViewerPreferences", pikepdf.Dictionary())
    preferences.DisplayDocTitle = True
    pdf.Root.ViewerPreferences = preferences


def assemble(front, parts, out, *, outline=()):
    """Copy every page of `parts` behind `front`, keeping the front's XMP, output intent,
    attachments and document information, and joining the parts' structure trees to the front's;
    `outline` adds (title, page index) bookmarks."""
    import pikepdf

    with pikepdf.open(front) as pdf:
        opened = []
        try:
            next_key = 1 + max((int(key) for key in pdf.Root.StructTreeRoot.ParentTree.Nums[::2]), default=-1)
            for part in parts:
                source = pikepdf.open(part)
                opened.append(source)  # pages are copied when saving: keep the sources open
                first = len(pdf.pages)
                pdf.pages.extend(source.pages)
                next_key = _join_structure(pdf, source, pdf.pages[first:], next_key)
            pdf.Root.StructTreeRoot.ParentTreeNextKey = next_key
            _declare_universal_accessibility(pdf)
            # WeasyPrint 70 lists each attachment twice in /AF (the PDF/A associated files).
            if "/AF" in pdf.Root:
                seen, unique = set(), pikepdf.Array()
                for spec in pdf.Root.AF:
                    if spec.objgen not in seen:
                        seen.add(spec.objgen)
                        unique.append(spec)
                pdf.Root.AF = unique
            if signing_configured() and "/Producer" in pdf.docinfo:
                # pyHanko names itself the producer in the XMP; the document information must agree.
                del pdf.docinfo["/Producer"]
            if outline:
                with pdf.open_outline() as bookmarks:
                    for title, index in outline:
                        bookmarks.root.append(pikepdf.OutlineItem(title, index))
            pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate, compress_streams=True)
        finally:
            for source in opened:
                source.close()
