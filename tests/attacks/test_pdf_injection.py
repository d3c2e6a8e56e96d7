"""Attacks on the PDF evidence through names and titles: a first name from the HR import and a
guideline title that close the <style> block of the print templates and ask WeasyPrint to embed a
server file (/etc/passwd, /proc/self/environ) or fetch an internal URL (SSRF).

Two layers are attacked separately: the CSS escaping of the running header and footer (the
payload must come out as literal text), and the URL fetcher (with the escaping deliberately broken,
nothing may be fetched, and every refusal is in the security log)."""

import http.server
import subprocess
import threading

import pikepdf
import pytest
import tinycss2
from django.conf import settings
from django.urls import reverse
from django.utils.safestring import mark_safe

from guidelines import publishing, services
from guidelines.models import Guideline, Version, VersionText
from guidelines.reports import rendering

from ..factories import BODY, make_employee

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]

PAYLOAD = "Emma</style><link rel=attachment href=file:///etc/passwd><style>"
PASSWD = b"root:x:0:0"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


class Canary:
    """A tiny HTTP server on 127.0.0.1 that records every request made to it."""

    def __init__(self):
        self.requests = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server interface)
                canary.requests.append(self.path)
                body = b"root:x:0:0:canary\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary():
    with Canary() as server:
        yield server


def hostile_scene(hilde, bob, meta, *, name, title, body=None):
    """An employee whose first name (as the HR import sets it) and a published guideline whose
    titles carry the payload; she has acknowledged it."""
    emma = make_employee("emma@example.com", "E0100")
    emma.user.first_name = name
    emma.user.save()
    guideline = Guideline.objects.create(slug="hostile", title_nl=title, title_en=title, owner=hilde)
    version = Version.objects.create(guideline=guideline, created_by=hilde)
    for language in ("nl", "en"):
        VersionText.objects.create(version=version, language=language, title=title, body=body or BODY[language])
    publishing.approve_version(version=version, by=bob.user)
    version = publishing.publish_version(version=version, by=hilde, material=True)
    ack, _created = services.acknowledge(employee=emma, version=version, language="en", meta=meta)
    return emma, ack


def download_certificate(client, ack, tmp_path):
    response = client.get(reverse("guidelines:report_certificate", args=[ack.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    path = tmp_path / "certificate.pdf"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def download_pack(client, tmp_path, slug="hostile"):
    response = client.post(reverse("guidelines:report_pack"), {"guideline": slug, "language": "en"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    path = tmp_path / "pack.pdf"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def squeezed(text):
    return "".join(text.split())


def printed(path, text):
    """Whether `text` is printed in the PDF, as text. Whitespace is left out of the comparison:
    WeasyPrint wraps long names, also after the slashes of a URL. pdftotext -raw keeps the content
    order, so a wrapped running header is not interleaved with the box beside it."""
    raw = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return squeezed(text) in squeezed(raw)


def count_printed(path, text):
    raw = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return squeezed(raw).count(squeezed(text))


def everything(path):
    """The file's bytes plus every stream decoded: attachments and page contents are compressed."""
    parts = [path.read_bytes()]
    with pikepdf.open(path) as document:
        for obj in document.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    parts.append(obj.read_bytes())
                except pikepdf.PdfError:
                    parts.append(obj.read_raw_bytes())
    return b"\n".join(parts)


def embedded_files(path):
    """The names of the embedded files, and the file attachment annotations on the pages."""
    with pikepdf.open(path) as document:
        annotations = [str(annotation.get("/Subtype")) for page in document.pages
                       for annotation in page.obj.get("/Annots", [])]
        return sorted(document.attachments), [a for a in annotations if a == "/FileAttachment"]


# Through the real interfaces -------------------------------------------------------------------------


def test_a_hostile_name_and_title_are_printed_on_the_certificate_not_obeyed(
        client_as, hilde, bob, web_meta, tmp_path, security_log):
    emma, ack = hostile_scene(hilde, bob, web_meta, name=PAYLOAD, title=PAYLOAD)
    path = download_certificate(client_as(emma), ack, tmp_path)
    assert embedded_files(path) == (["acknowledgement.json"], [])
    content = everything(path)
    assert PASSWD not in content and settings.SECRET_KEY.encode() not in content
    assert printed(path, f"{PAYLOAD} Example (E0100)")  # the name, as text
    assert printed(path, f"Certificate of acknowledgement: {PAYLOAD}")  # the running header (a CSS string)
    assert printed(path, "Page 1 of 1")
    assert security_log("pdf_fetch_refused") == []  # our own templates load nothing


def test_a_hostile_name_and_title_are_printed_in_the_auditor_pack_not_obeyed(
        client_as, hilde, bob, arjen, web_meta, tmp_path, security_log):
    hostile_scene(hilde, bob, web_meta, name=PAYLOAD, title=PAYLOAD)
    path = download_pack(client_as(arjen), tmp_path)
    assert embedded_files(path) == (["acknowledgements.csv", "manifest.json", "objections.csv"], [])
    assert PASSWD not in everything(path)
    with pikepdf.open(path) as document:
        pages = len(document.pages)
    assert count_printed(path, f"Auditor pack: {PAYLOAD}") == pages  # the running header on every page
    assert printed(path, f"{PAYLOAD} · version 1.0")  # the cover
    assert printed(path, "Emma</style><link rel=a…")  # the per-employee table cuts names at 24 characters
    with pikepdf.open(path) as document:
        csv_text = document.attachments["acknowledgements.csv"].get_file().read_bytes().decode()
    assert f",{PAYLOAD},Example," in csv_text  # the embedded data keeps the full name
    assert security_log("pdf_fetch_refused") == []


def naive_css_string(text):
    """The escaping as it was before the fix: quotes and backslashes, not "<"."""
    return mark_safe('"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"')


@pytest.mark.parametrize("escaping", ["intact", "broken"])
def test_no_payload_reaches_the_network_or_the_file_system(
        client_as, hilde, bob, arjen, web_meta, tmp_path, canary, security_log, monkeypatch, escaping):
    """With the escaping broken on purpose, the payload becomes markup again: then the fetcher alone
    must stop every load, and say so in the security log."""
    # The employee's name is printed in the certificate's body, the auditor's in the pack's running footer
    # ("Generated … by"), the title in every running header.
    name = f"Emma</style><img src={canary.url}/emma.png><link rel=attachment href=file:///etc/passwd><style>"
    title = (f"P</style><link rel=attachment href={canary.url}/attachment><img src={canary.url}/image>"
             f"<link rel=attachment href=file:///etc/passwd><style>")
    arjen.last_name = (f"A</style><link rel=stylesheet href={canary.url}/name.css>"
                       f"<style>@import url({canary.url}/import.css);")
    arjen.save()
    body = (f"# Policy\n\nSee [the source]({canary.url}/link) and <img src=\"{canary.url}/markdown-image\">"
            f"<link rel=attachment href=\"{canary.url}/markdown-attachment\">\n")
    emma, ack = hostile_scene(hilde, bob, web_meta, name=name, title=title, body=body)
    if escaping == "broken":
        monkeypatch.setattr(rendering, "css_string", naive_css_string)
    certificate = download_certificate(client_as(emma), ack, tmp_path)
    pack = download_pack(client_as(arjen), tmp_path)

    assert canary.requests == []
    for path in (certificate, pack):
        assert PASSWD not in everything(path)
        assert embedded_files(path)[1] == []
    assert embedded_files(certificate)[0] == ["acknowledgement.json"]
    assert embedded_files(pack)[0] == ["acknowledgements.csv", "manifest.json", "objections.csv"]
    refused = security_log("pdf_fetch_refused")
    if escaping == "intact":
        assert refused == []  # nothing even tried: the name is text
        assert printed(certificate, name) and printed(certificate, f"Certificate of acknowledgement: {title}")
        assert printed(pack, f"by Arjen {arjen.last_name} <arjen@example.com>")  # the running footer
    else:
        urls = {entry["details"]["url"] for entry in refused}
        assert {f"{canary.url}/attachment", f"{canary.url}/image", "file:///etc/passwd", f"{canary.url}/name.css",
                f"{canary.url}/import.css"} <= urls
        assert {entry["details"]["scheme"] for entry in refused} == {"http", "file"}
        assert all(entry["outcome"] == "denied" for entry in refused)
        assert {entry["details"]["document"] for entry in refused} >= {"reports/certificate.html",
                                                                         "reports/front.html"}
    # The link in the guideline text is a link in the PDF, and still not fetched.
    with pikepdf.open(pack) as document:
        links = [str(annotation.A.URI) for page in document.pages for annotation in page.obj.get("/Annots", [])
                 if annotation.get("/Subtype") == "/Link" and "/URI" in annotation.get("/A", {})]
    assert f"{canary.url}/link" in links


# The CSS string escaper ---------------------------------------------------------------------------------


NASTY = [
    PAYLOAD,
    "Emma</STYLE ><link rel=attachment href=file:///proc/self/environ>",
    '"; } @page { @top-left { content: url(file:///etc/passwd) } } x { content: "',
    "back\\slash\\\" and 'single' \"double\"",
    "line\nbreak\r\nform\x0cfeed\ttab",
    "<!-- --> <![CDATA[ ]]> &amp; &lt;",
    "<  >",  # a space right after an escape: CSS swallows one whitespace after an escape
    "<0a1", "<abcdef",  # hex digits right after an escape
    "\\00003c",
    "Zoë Ǆorđe 李小龙 محمد 😀 \u200b\u202e",
    "trailing backslash \\",
    "",
]


@pytest.mark.parametrize("text", NASTY)
def test_css_string_round_trips_and_never_writes_markup(text):
    escaped = rendering.css_string(text)
    inner = escaped[1:-1]
    assert escaped[0] == escaped[-1] == '"'
    for forbidden in ("<", ">", "&", '"', "'", "\n", "\r", "\x0c", "\t"):
        assert forbidden not in inner, forbidden
    assert "</style" not in escaped.lower()
    assert all(part == "" or len(part) >= 6 for part in inner.split("\\")[1:])  # six-digit escapes
    # A CSS parser reads back exactly the text, as one string token and nothing else.
    tokens = [token for token in tinycss2.parse_component_value_list(f"content: {escaped};")
              if token.type != "whitespace"]
    assert [token.type for token in tokens] == ["ident", "literal", "string", "literal"]
    assert tokens[2].value == text


def test_css_string_replaces_what_css_cannot_carry():
    assert rendering.css_string("a\x00b") == '"a\\00fffdb"'
    assert "\x00" not in rendering.css_string("\x00")


def test_css_string_is_marked_safe_so_templates_need_no_safe_filter():
    from django.template import Context, Template

    rendered = Template("<style>a{content: {{ value }}}</style>").render(
        Context({"value": rendering.css_string(PAYLOAD)}))
    assert rendered.count("</style>") == 1 and "&quot;" not in rendered


# The URL fetcher ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file:///proc/self/environ",
    "file://localhost/etc/passwd",
    rendering.STATIC_DIR.as_uri() + "/../intranet/settings.py",
    rendering.STATIC_DIR.as_uri() + "/%2e%2e/intranet/settings.py",
    rendering.STATIC_DIR.as_uri() + "/css/../../intranet/settings.py",
    rendering.STATIC_DIR.as_uri() + "/css/missing.css",
    rendering.STATIC_DIR.as_uri() + "/css",  # a folder
    rendering.STATIC_DIR.as_uri() + "-evil/css/app.css",  # a sibling folder whose name starts the same
    "file://evil.example/static/css/app.css",
    "http://127.0.0.1/",
    "https://example.com/style.css",
    "data:text/css,body{background:red}",
    "data:text/plain;base64,cm9vdDp4OjA6MA==",
    "ftp://example.com/x",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "javascript:alert(1)",
    "css/app.css",  # not absolute
])
def test_the_fetcher_refuses_everything_but_static_files_and_logs_it(url, security_log):
    fetcher = rendering.url_fetcher("test")
    with pytest.raises(rendering.FetchRefused):
        fetcher.fetch(url)
    [entry] = security_log("pdf_fetch_refused")
    assert entry["outcome"] == "denied" and entry["details"]["document"] == "test"
    assert entry["details"]["url"] == url and entry["details"]["scheme"] == url.split(":")[0] * (":" in url)


def test_the_fetcher_refuses_the_network_without_connecting(canary, security_log):
    with pytest.raises(rendering.FetchRefused):
        rendering.url_fetcher().fetch(f"{canary.url}/probe")
    assert canary.requests == [] and len(security_log("pdf_fetch_refused")) == 1


def test_the_fetcher_shortens_long_urls_in_the_log(security_log):
    with pytest.raises(rendering.FetchRefused):
        rendering.url_fetcher().fetch("data:text/plain," + "A" * 5000)
    [entry] = security_log("pdf_fetch_refused")
    assert len(entry["details"]["url"]) == rendering.LOGGED_URL_LENGTH + 1 and entry["details"]["scheme"] == "data"


def test_the_fetcher_serves_static_files(security_log):
    response = rendering.url_fetcher().fetch(rendering.base_url() + "css/app.css")
    assert response.read() == (rendering.STATIC_DIR / "css" / "app.css").read_bytes()
    assert response.content_type == "text/css"
    assert security_log("pdf_fetch_refused") == []


def test_the_fetcher_does_not_follow_a_link_out_of_the_static_folder(tmp_path, monkeypatch, security_log):
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "ok.css").write_text("p { color: red }")
    (static / "css" / "passwd.css").symlink_to("/etc/passwd")
    monkeypatch.setattr(rendering, "STATIC_DIR", static)
    assert rendering.url_fetcher().fetch(static.as_uri() + "/css/ok.css").read() == b"p { color: red }"
    with pytest.raises(rendering.FetchRefused):
        rendering.url_fetcher().fetch(static.as_uri() + "/css/passwd.css")
    assert len(security_log("pdf_fetch_refused")) == 1


def test_weasyprint_loads_through_the_fetcher_only(canary, tmp_path, security_log):
    """Markup that asks for everything at once, rendered the way reports are: only the static
    stylesheet is loaded, nothing is embedded, the canary hears nothing."""
    markup = f"""<html><head>
        <link rel="stylesheet" href="css/app.css">
        <link rel="attachment" href="file:///etc/passwd">
        <link rel="stylesheet" href="{canary.url}/remote.css">
        <style>@import url("{canary.url}/import.css"); @font-face {{ font-family: x; src: url({canary.url}/font) }}
        body {{ background: url(file:///etc/passwd) }}</style></head>
        <body><img src="{canary.url}/image.png"><a rel="attachment" href="file:///etc/passwd">x</a>
        <svg><image href="{canary.url}/svg.png" width="10" height="10"/></svg>
        <object data="{canary.url}/object"></object><embed src="{canary.url}/embed">
        <a href="{canary.url}/just-a-link">a link</a></body></html>"""
    path = tmp_path / "probe.pdf"
    rendering.html_document(markup, purpose="probe").write_pdf(path)
    assert canary.requests == []
    assert embedded_files(path) == ([], [])
    assert PASSWD not in everything(path)
    refused = {entry["details"]["url"] for entry in security_log("pdf_fetch_refused")}
    assert {"file:///etc/passwd", f"{canary.url}/remote.css", f"{canary.url}/import.css",
            f"{canary.url}/image.png"} <= refused
    assert not any("css/app.css" in url or "just-a-link" in url for url in refused)
