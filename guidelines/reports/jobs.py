"""Generating and storing PDF reports: the auditor pack in steps that can run on several
workers (prepare → table chunks → finish), and the one-page certificate.

prepare() gathers the evidence once and writes it to the report's work folder: the table lines,
the CSV that is embedded, the front part (PDF/A-3a with the attachments) and the back part. The
table chunks then render from those files, so every chunk sees the same snapshot, and finish()
joins the parts, records the SHA-256 and the audit event. Small packs run the same steps in the
request. The work folder and the finished PDFs live under MEDIA_ROOT, which web and workers share.
"""

import csv
import hashlib
import io
import itertools
import json
import secrets
import shutil
from datetime import UTC
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .. import chain, comprehension, imports, organisation, webhook_events
from ..access import group_label, require_acknowledgement_reader, require_evidence_reader
from ..accounts import configured_providers, sign_in_label
from ..models import ERROR_TEXT_LIMIT, AuditEvent, Report
from ..services import record_audit_event
from ..status import Status
from . import contents, rendering

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read out and type
GENERATOR = "Guidelines evidence reports 1.0"

# How the embedded CSV treats text a spreadsheet would run as a formula (dashboards.csv_cell), for the manifest.
CSV_FORMULA_CELLS = "cells starting with = + - @, a tab or a carriage return are prefixed with an apostrophe (')"

# 184 characters: as many as a landscape A4 page holds in the table's type.
EMPLOYEE_WIDTHS = (24, 10, 15, 12, 7, 4, 16, 7, 7, 64)
OUTSTANDING_WIDTHS = (28, 10, 20, 9, 11, 90)


def new_code():
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(text):
    raw = "".join(c for c in (text or "").upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else None


def reports_dir():
    return Path(settings.MEDIA_ROOT) / "reports"


def work_dir(report):
    return reports_dir() / "work" / str(report.pk)


def verify_url(code=None):
    # The public page: whoever holds the PDF can check it without an account here.
    url = f"{settings.SITE_URL}{reverse('guidelines:public_verify')}"
    return f"{url}?code={code}" if code else url


def _print_context(report, *, title, section_title, generated_by, total_pages):
    """What every part of a report shares: metadata, the running header and footer."""
    generated_at = timezone.localtime(report.requested_at)
    before, after = (_("Page %(page)s of %(total)s") % {"page": "\x00", "total": total_pages}).split("\x00")
    return {
        "document_title": title, "author": generated_by, "generator": GENERATOR, "code": report.verification_code,
        "description": _("Verification code %(code)s") % {"code": report.verification_code},
        "created_iso": generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_at": generated_at, "generated_by": generated_by, "verify_url": verify_url(),
        "qr": rendering.qr_svg(verify_url(report.verification_code)), "signed": rendering.signing_configured(),
        # The running header and footer are CSS strings in the <style> block: escaped for CSS, not HTML.
        "css": {
            "title": rendering.css_string(section_title), "code": rendering.css_string(_("Verification code %(code)s")
                                                                          % {"code": report.verification_code}),
            "generated": rendering.css_string(_("Generated %(at)s by %(by)s") % {
                "at": generated_at.strftime("%Y-%m-%d %H:%M"), "by": generated_by}),
            "page_before": rendering.css_string(before), "page_after": rendering.css_string(after),
        },
    }


def _who(user):
    if user is None:
        return _("the command line (manage.py audit_report)")
    return f"{user.get_full_name()} <{user.email}>" if user.get_full_name() else user.email


# The auditor pack ------------------------------------------------------------------------------------


def start_audit_pack(*, user, guideline_slug, version="", department="", as_of="", language="en"):
    """Check the choices and record the report to make; ValidationError says what is wrong.

    `user` is HR or an auditor, or None for the server's operator running the audit_report command."""
    if user is not None:
        require_evidence_reader(user)
    pack = contents.parse_pack(guideline_slug=guideline_slug, version=version, department=department,
                                    as_of=as_of, language=language)
    return Report.objects.create(
        kind=Report.Kind.AUDIT_PACK, verification_code=new_code(), requested_by=user, language=language,
        parameters=pack.parameters(), guideline=pack.guideline, rows=contents.count_rows(pack),
    )


def file_for_download(report, *, by):
    """The report's file, opened, with its download recorded as an audit event; None if the file is gone."""
    path = reports_dir() / report.file
    if not report.file or not path.exists():
        return None
    record_audit_event(action=AuditEvent.Action.REPORT_DOWNLOADED, actor=by, guideline=report.guideline,
                       code=report.verification_code, sha256=report.sha256)
    return open(path, "rb")


def in_background(report):
    return report.rows > settings.REPORT_BACKGROUND_ROWS


def _pack_of(report):
    parameters = report.parameters
    return contents.parse_pack(
        guideline_slug=parameters["guideline"], version=parameters["version"],
        department=parameters["department"] or "", as_of=parameters["as_of"], language=parameters["language"],
        today=timezone.localdate(report.requested_at),
    )


def _local(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _employee_line(version, row):
    acknowledged = row["ack__acknowledged_at"]
    return [
        f"{row['user__first_name']} {row['user__last_name']}".strip(), row["employee_number"],
        row["department_name"] or "—", str(Status(row["status"]).label),
        f"{row['ack__version__major']}.{row['ack__version__minor']}" if acknowledged else "—",
        row["ack__language"] or "—", _local(acknowledged) or "—",
        row["ack__channel"] or "—", _reading(row) if acknowledged else "—", row["ack__content_hash"] or "—",
    ]


def _reading(row):
    """The table's short word for how the reading is proven (the legend on the front page explains it)."""
    return str({
        contents.ReadingKind.END: _("end"), contents.ReadingKind.PART: _("part"),
        contents.ReadingKind.OPENED: _("opened"), contents.ReadingKind.NOT_RECORDED: "—",
    }[contents.ReadingKind.of(row)])


def _outstanding_line(row):
    dates = [timezone.localtime(sent).strftime("%Y-%m-%d") for sent, _kind in row.reminders]
    history = (_("%(count)s: %(dates)s") % {"count": len(dates), "dates": ", ".join(reversed(dates))}
               if dates else _("none"))
    return [row.full_name, row.employee_number, row.department_name or "—",
            str(_("overdue") if row.overdue else _("pending")), row.due_date.isoformat(), history]


def plan_of(report):
    """The plan prepare() wrote last, or None while it has not finished."""
    path = work_dir(report) / "plan.json"
    return json.loads(path.read_text()) if path.exists() else None


def missing_chunks(report, plan):
    folder = work_dir(report)
    return [index for index in range(len(plan["chunks"])) if not (folder / f"part-{index:05d}.pdf").exists()]


def prepare(report):
    """Gather the evidence, write the table lines and the CSV, render the front and back parts.
    Returns the plan: the table chunks with their first pages (written last, as plan.json)."""
    Report.objects.filter(pk=report.pk).update(status=Report.Status.RUNNING)
    pack = _pack_of(report)
    folder = work_dir(report)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with translation.override(pack.language):
        chain = contents.chain_check(report.requested_by)
        sections = contents.version_sections(pack)
        counts, sign_ins, readings = {}, contents.SignIns(), contents.Readings()
        # One pass over the per-employee rows writes the table lines and the embedded CSV, and counts
        # the sign-in methods.
        csv_buffer = io.StringIO()
        csv_writer = csv.writer(csv_buffer, lineterminator="\n")
        csv_writer.writerow(contents.CSV_COLUMNS)
        with open(folder / "employees.jsonl", "w") as lines:
            counts["employees"] = 0
            for version in pack.versions:
                for row in contents.employee_rows(pack, version):
                    lines.write(json.dumps(_employee_line(version, row)) + "\n")
                    csv_writer.writerow(contents.csv_record(pack, version, row))
                    sign_ins.add(row)
                    readings.add(row)
                    counts["employees"] += 1
        csv_text = csv_buffer.getvalue()
        with open(folder / "outstanding.jsonl", "w") as lines:
            counts["outstanding"] = 0
            for section in sections:
                for row in section.outstanding:
                    lines.write(json.dumps(_outstanding_line(row)) + "\n")
                    counts["outstanding"] += 1
        generated_by = _who(report.requested_by)
        title = _("Auditor pack: %(title)s") % {"title": pack.guideline.title}
        front_context = {
            "guideline": pack.guideline, "version_choice": pack.version_choice, "sections": sections,
            "owner": _who(pack.guideline.owner), "as_of": pack.as_of,
            "as_of_is_today": pack.as_of == timezone.localdate(report.requested_at),
            "department": pack.department, "population": sum(s.summary.counts.in_scope for s in sections),
            "audience": ", ".join(sorted([d.name for d in pack.guideline.audience_departments.all()]
                                         + [group_label(g.name) for g in pack.guideline.audience_groups.all()])),
            "last_import": imports.last_applied_import(), "chain": chain, "statuses": Status.choices,
            "organisation_history": organisation.keeps_history(),
        }
        checkpoint_rows, checkpoints_made = contents.checkpoints_until(pack)
        history = contents.version_history(pack)
        # The objections and exception requests, and their own CSV beside the per-employee one.
        objection_rows = contents.objections(pack)
        objections_buffer = io.StringIO()
        objections_writer = csv.writer(objections_buffer, lineterminator="\n")
        objections_writer.writerow(contents.OBJECTION_CSV_COLUMNS)
        for row in objection_rows:
            objections_writer.writerow(contents.objection_csv_record(pack, row))
        objections_csv = objections_buffer.getvalue()
        back_context = {
            "objections": objection_rows,
            "exemptions": contents.exemptions(pack), "extensions": contents.extensions(pack),
            "history": history, "texts": contents.reported_texts(pack), "chain": chain,
            # The works council's consent: a column for a guideline that requires it or a version that has it.
            "show_consent": pack.guideline.requires_works_council_consent
            or any(version.has_works_council_consent for version in history),
            "sign_ins": sign_ins.rows(), "providers": list(configured_providers().values()),
            "readings": readings.rows(), "median_seconds_on_text": readings.median_seconds(),
            "comprehension": [{"version": version, "rates": rates} for version in pack.versions
                              if (rates := comprehension.pass_rates(version))],
            "checkpoints": checkpoint_rows, "checkpoints_made": checkpoints_made,
        }

        def context(section_title, total):
            return _print_context(report, title=title, section_title=section_title, generated_by=generated_by,
                                  total_pages=total)

        # Pass 1: how many pages the front and back take (the total only changes digits in the footer).
        front_pages = len(rendering.render("reports/front.html", {**front_context, **context(title, 99999)},
                                     language=pack.language).pages)
        back_pages = len(rendering.render("reports/back.html", {**back_context, **context(title, 99999)},
                                    language=pack.language).pages)
        plan, page = {"chunks": [], "counts": counts}, front_pages + 1
        for table in ("employees", "outstanding"):
            for start, count in rendering.chunks(counts[table]):
                plan["chunks"].append({"table": table, "start": start, "count": count, "first_page": page})
                page += rendering.page_count(count)
        total = page - 1 + back_pages
        plan.update(front_pages=front_pages, back_first=page, total=total)

        manifest = {
            "generator": GENERATOR, "verification_code": report.verification_code,
            "generated_at": report.requested_at.astimezone(UTC).isoformat(), "generated_by": _who(report.requested_by),
            "filters": report.parameters, "rows": counts["employees"], "outstanding": counts["outstanding"],
            "counts": {s.version.number: {status: getattr(s.summary.counts, status) for status in Status.values}
                       for s in sections},
            "chain": {"intact": chain.intact, "checked": chain.checked, "head_sequence": chain.head_sequence,
                      "head_seal": chain.head_seal, "checkpoints_checked": chain.checkpoints_checked},
            "csv_sha256": hashlib.sha256(csv_text.encode()).hexdigest(), "pages": total,
            "csv_formula_cells": CSV_FORMULA_CELLS,
            "objections": {"rows": len(objection_rows),
                           "open": sum(1 for row in objection_rows if row.handled_then is None),
                           "csv_sha256": hashlib.sha256(objections_csv.encode()).hexdigest()},
            "sign_ins": [{key: row[key] for key in ("method", "provider_second_factor", "count")}
                         for row in sign_ins.rows()],
            "readings": {row["kind"]: row["count"] for row in readings.rows()},
            "checkpoints": [{"made_at": checkpoint.made_at.astimezone(UTC).isoformat(),
                             "head_sequence": checkpoint.head_sequence, "head_seal": checkpoint.head_seal,
                             "digest": checkpoint.digest, "timestamp_authority": checkpoint.timestamp_authority,
                             "timestamped_at": checkpoint.timestamped_at.astimezone(UTC).isoformat()
                             if checkpoint.timestamped_at else None} for checkpoint in checkpoint_rows],
        }
        front = rendering.render("reports/front.html", {**front_context, **context(title, total)},
                           language=pack.language)
        rendering.write_front(front, folder / "front.pdf", attachments=[
            ("acknowledgements.csv", csv_text.encode(), _("Per-employee acknowledgement data"), "Data"),
            ("manifest.json", json.dumps(manifest, indent=2).encode(), _("Filters, counts and chain head"),
             "Supplement"),
            ("objections.csv", objections_csv.encode(), _("Objections and exception requests, with HR's handling"),
             "Data"),
        ])
        back = rendering.render("reports/back.html", {**back_context, **context(title, total)},
                          first_page=plan["back_first"], total_pages=total, language=pack.language)
        rendering.write_part(back, folder / "back.pdf")
        (folder / "plan.json").write_text(json.dumps(plan))
    Report.objects.filter(pk=report.pk).update(progress_total=len(plan["chunks"]), pages=total,
                                               rows=counts["employees"])
    return plan


def render_chunk(report, index):
    """Render one table chunk from the prepared lines. Returns True when it was the last one."""
    folder = work_dir(report)
    plan = json.loads((folder / "plan.json").read_text())
    chunk = plan["chunks"][index]
    with open(folder / f"{chunk['table']}.jsonl") as lines:
        rows = [json.loads(text) for text in itertools.islice(lines, chunk["start"], chunk["start"] + chunk["count"])]
    with translation.override(report.language):
        if chunk["table"] == "employees":
            heading = [_("Name"), _("Number"), _("Department"), _("Status"), _("Version"), _("Lang"),
                       _("Acknowledged at"), _("Channel"), _("Read"), _("SHA-256 of the text read")]
            widths, section = EMPLOYEE_WIDTHS, _("Per-employee acknowledgements")
        else:
            heading = [_("Name"), _("Number"), _("Department"), _("Status"), _("Due date"),
                       _("Reminder e-mails sent (newest first)")]
            widths, section = OUTSTANDING_WIDTHS, _("Outstanding employees and their reminders")
        title = _("Auditor pack: %(title)s") % {"title": report.guideline.title}
        context = _print_context(report, title=title, section_title=f"{title} · {section}",
                                 generated_by=_who(report.requested_by), total_pages=plan["total"])
        document = rendering.table_document(heading=heading, widths=widths, rows=rows, context=context,
                                      first_page=chunk["first_page"], total_pages=plan["total"],
                                      language=report.language)
    part = folder / f"part-{index:05d}.pdf"
    rendering.write_part(document, part.with_suffix(".tmp"))
    part.with_suffix(".tmp").replace(part)  # complete or absent, never half-written
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        locked.progress = len(list(folder.glob("part-*.pdf")))
        locked.save(update_fields=["progress"])
    return locked.progress >= locked.progress_total


def finish(report):
    """Join the parts, record the SHA-256 and the audit event. Safe to call twice."""
    with transaction.atomic():
        report = Report.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=report.pk)
        if report.status == Report.Status.DONE:
            return report
        folder = work_dir(report)
        plan = json.loads((folder / "plan.json").read_text())
        parts = [folder / f"part-{index:05d}.pdf" for index in range(len(plan["chunks"]))]
        with translation.override(report.language):
            outline = [(_("Coverage"), 0)]
            if plan["counts"]["employees"]:
                outline.append((_("Per-employee acknowledgements"), plan["front_pages"]))
            first_outstanding = next((c["first_page"] for c in plan["chunks"] if c["table"] == "outstanding"), None)
            if first_outstanding:
                outline.append((_("Outstanding employees"), first_outstanding - 1))
            outline.append((_("Exemptions, versions, texts and method"), plan["back_first"] - 1))
        report = _store(report, folder / "front.pdf", [*parts, folder / "back.pdf"], outline=outline,
                        cleanup=folder)
        if report.kind == Report.Kind.AUDIT_PACK:
            webhook_events.emit(webhook_events.Event.REPORT_READY, f"report.ready:{report.pk}",
                                webhook_events.report_ready(report), at=report.finished_at)
        return report


def _store(report, front, parts, *, outline=(), cleanup=None):
    target = reports_dir() / f"{report.kind}-{report.verification_code}.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    rendering.assemble(front, parts, temporary, outline=outline)
    if rendering.signing_configured():
        unsigned = target.with_suffix(".unsigned")
        temporary.replace(unsigned)
        rendering.sign(unsigned, temporary)
        unsigned.unlink()
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    temporary.replace(target)
    report.status, report.sha256, report.size = Report.Status.DONE, digest, target.stat().st_size
    report.file, report.finished_at, report.progress = target.name, timezone.now(), report.progress_total
    report.save(update_fields=["status", "sha256", "size", "file", "finished_at", "progress"])
    record_audit_event(action=AuditEvent.Action.REPORT_GENERATED, actor=report.requested_by,
                       guideline=report.guideline, kind=report.kind, code=report.verification_code,
                       sha256=digest, pages=report.pages, rows=report.rows, parameters=report.parameters)
    if cleanup:
        shutil.rmtree(cleanup, ignore_errors=True)
    return report


def fail(report, error):
    Report.objects.filter(pk=report.pk).update(status=Report.Status.FAILED, error=str(error)[:ERROR_TEXT_LIMIT])
    shutil.rmtree(work_dir(report), ignore_errors=True)


def generate_now(report):
    """All steps in this process (small packs, the command line, tests)."""
    try:
        plan = prepare(report)
        for index in range(len(plan["chunks"])):
            render_chunk(report, index)
        return finish(report)
    except Exception as error:
        fail(report, error)
        raise


# The certificate --------------------------------------------------------------------------------------


def certificate_generator():
    """Who a certificate says generated it. A certificate is made once per acknowledgement and
    language and then served to everyone allowed to download it (the employee, HR, auditors), so it
    names the system and not whoever happened to ask first. That first requester is still recorded:
    as the report's requested_by and the actor of its report_generated audit event, and every download
    as a report_downloaded event."""
    return _("the intranet's evidence system")


def stored_certificate(acknowledgement, language):
    """The certificate made earlier for this acknowledgement and language, if its file is still there."""
    report = (Report.objects.filter(kind=Report.Kind.CERTIFICATE, acknowledgement=acknowledgement, language=language,
                                    status=Report.Status.DONE)
              .select_related("guideline", "requested_by").order_by("requested_at", "pk").first())
    return report if report is not None and (reports_dir() / report.file).is_file() else None


CERTIFICATE_LOCK_CLASS = 0x67636572  # "gcer": the advisory-lock namespace of certificate generation


def _lock_certificates_of(acknowledgement):
    """Serialise certificate generation for one acknowledgement until the transaction ends. SQLite
    (development only) serialises writers itself and needs nothing."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Two int4 keys; a (harmless) collision past 2^31 acknowledgements only makes one request wait.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [CERTIFICATE_LOCK_CLASS, acknowledgement.pk & 0x7FFFFFFF])


def certificate(*, acknowledgement, user, language):
    """One acknowledgement as a one-page tagged PDF/A-3a, recorded and verifiable like every report.

    Made once per (acknowledgement, language): later requests get the stored report, the same file
    with the same SHA-256 and verification code. Two simultaneous first requests are serialised by
    a transaction-scoped advisory lock per acknowledgement, so the second one waits and then finds the
    first one's certificate. (Not a row lock: PostgreSQL grants row locks only with UPDATE privilege,
    which the application role does not have on the append-only evidence.) Should the stored file be
    gone from MEDIA_ROOT, a new certificate is made (and recorded) instead."""
    require_acknowledgement_reader(user, acknowledgement)
    with transaction.atomic():
        _lock_certificates_of(acknowledgement)
        existing = stored_certificate(acknowledgement, language)
        if existing is not None:
            return existing
        report = Report.objects.create(
            kind=Report.Kind.CERTIFICATE, verification_code=new_code(), requested_by=user, language=language,
            acknowledgement=acknowledgement, guideline=acknowledgement.guideline, rows=1, progress_total=0,
            parameters={"acknowledgement": acknowledgement.sequence, "language": language},
        )
        folder = work_dir(report)
        try:
            _render_certificate(report, acknowledgement, language, folder)
            report.pages = 1
            return _store(report, folder / "front.pdf", [], cleanup=folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # the report row goes with the transaction
            raise


def certificate_record(ack):
    """The acknowledgement as the certificate embeds it: exactly the values its seal covers, named
    and in the form they are sealed in (docs/evidence.md), plus the seal format and the seal, so
    anyone can recompute the seal from the certificate alone."""
    names = chain.SEAL_FORMATS[ack.seal_format]
    values = chain.sealed_values(ack, guideline_slug=ack.guideline.slug, version_number=ack.version.number)
    return {**dict(zip(names, values, strict=True)), "seal_format": ack.seal_format, "seal": ack.seal}


def _render_certificate(report, ack, language, folder):
    folder.mkdir(parents=True, exist_ok=True)
    with translation.override(language):
        generated_by = certificate_generator()
        # The version's title in the certificate's language; the statement stays as agreed to.
        guideline_title = ack.version.title
        title = _("Certificate of acknowledgement: %(title)s") % {"title": guideline_title}
        context = {
            **_print_context(report, title=title, section_title=title, generated_by=generated_by, total_pages=1),
            "ack": ack, "title": guideline_title, "orientation": "portrait",
            "utc": ack.acknowledged_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "sign_in": sign_in_label(ack.auth_method, ack.sso_amr),
        }
        document = rendering.render("reports/certificate.html", context, total_pages=1, language=language)
        if len(document.pages) != 1:
            raise RuntimeError(f"the certificate took {len(document.pages)} pages")
        record = certificate_record(ack)
        record.update(verification_code=report.verification_code, generator=GENERATOR)
        rendering.write_front(document, folder / "front.pdf", attachments=[
            ("acknowledgement.json", json.dumps(record, indent=2).encode(), _("The acknowledgement record"), "Data"),
        ])
