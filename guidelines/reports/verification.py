"""Checking a PDF someone holds against the reports on record: by its bytes (SHA-256) or its code.

A genuine file matches a recorded report byte for byte. A file that claims a verification code in
its metadata but does not match is reported as altered (it names the report it claims to be);
anything else is unknown.
"""

import hashlib
import io

from django.utils.translation import gettext as _

from ..models import Report
from .jobs import normalise_code


def find_by_content(content):
    """(report or None, digest, claimed code): the report whose SHA-256 matches the bytes, and the
    verification code the file claims in its metadata (to tell a tampered copy from a stranger)."""
    return _find(hashlib.sha256(content).hexdigest(), lambda: io.BytesIO(content))


def find_by_upload(upload):
    """find_by_content() for an uploaded file, without reading it into memory: the SHA-256 is
    computed over its chunks, and pikepdf opens the temporary file on disk (large uploads) or the
    small in-memory upload itself to read the claimed code."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)

    def source():
        if hasattr(upload, "temporary_file_path"):
            return upload.temporary_file_path()
        upload.seek(0)
        return upload

    return _find(digest.hexdigest(), source)


def starts_like_a_pdf(upload):
    upload.seek(0)
    header = upload.read(5)
    upload.seek(0)
    return header == b"%PDF-"


def check_upload(upload, max_bytes):
    """The verdict on an uploaded file, for the signed-in and the public verification page alike:
    {"outcome": "not_pdf" | "genuine" | "altered" | "unknown", "report", "digest"}. An altered file is
    one that claims the code of a report we made (any report, finished or not) but does not match it."""
    if upload.size > max_bytes or not starts_like_a_pdf(upload):
        return {"outcome": "not_pdf"}
    report, digest, claimed = find_by_upload(upload)
    claimed_report = Report.objects.filter(verification_code=claimed).select_related(*RELATED).first() \
        if claimed else None
    return {"outcome": "genuine" if report else ("altered" if claimed_report else "unknown"),
            "report": report or claimed_report, "digest": digest}


def _find(digest, source):
    report = find_by_digest(digest)
    claimed = None
    if report is None:
        claimed = _claimed_code(source())
    return report, digest, claimed


def _claimed_code(source):
    """The verification code in the document information of a PDF (a path or a binary file object)."""
    import pikepdf

    try:
        with pikepdf.open(source) as document:
            return normalise_code(str(document.docinfo.get("/Keywords", "")))
    except Exception:  # not a PDF, or damaged beyond reading: there is no claim to report
        return None


def public_facts(report):
    """What the public verification page may say about a report: what kind, when it was made and what
    it covers, and its recorded SHA-256. Nothing about a person: not who asked for it, not whose
    acknowledgement a certificate shows."""
    parameters = report.parameters or {}
    if report.acknowledgement_id:  # a certificate: of which guideline and version, not whose
        guideline = report.acknowledgement.version.title
        version = _("version %(number)s") % {"number": report.acknowledgement.version.number}
    else:
        guideline = report.guideline.title if report.guideline_id else parameters.get("guideline", "")
        version = report.covered_versions
    return {
        "kind": report.get_kind_display(),
        "generated_at": report.finished_at or report.requested_at,
        "guideline": guideline,
        "version": version,
        "as_of": parameters.get("as_of", ""),
        "certificate": report.kind == Report.Kind.CERTIFICATE,
        "sha256": report.sha256,
        "code": report.verification_code,
    }


# What the verification pages show of a report (the signed-in page names who asked for it).
RELATED = ("requested_by", "guideline", "acknowledgement__guideline", "acknowledgement__version")


def find_by_digest(digest):
    return Report.objects.filter(sha256=digest, status=Report.Status.DONE).select_related(*RELATED).first()


def find_by_code(code):
    normalised = normalise_code(code)
    if not normalised:
        return None
    return Report.objects.filter(verification_code=normalised, status=Report.Status.DONE).select_related(
        *RELATED).first()
