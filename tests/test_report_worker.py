"""A large auditor pack generated in the background by a real Celery worker on Redis: prepare, table
chunks and assembly as separate tasks, progress on the status page, a download when ready."""

import re
import subprocess

import pytest
from django.urls import reverse

from guidelines import services
from guidelines.models import Report
from guidelines.reports import jobs, verification

from .factories import make_employee, make_guideline, publish
from .smtp_server import SMTPServer
from .test_reminder_worker import app_on_redis, queue_prefix, worker_factory  # noqa: F401 (fixtures)
from .workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_large_pack_is_generated_in_the_background_with_progress(
    worker_factory, tmp_path, settings, client_as, arjen, hilde, bob, web_meta,  # noqa: F811
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPORT_BACKGROUND_ROWS = 20
    employees = [make_employee(f"person{n}@example.com", f"P{n:04}") for n in range(95)]
    version = publish(make_guideline(hilde), author=hilde, approver=bob.user)
    for employee in employees[:50]:
        services.acknowledge(employee=employee, version=version, language="en", meta=web_meta)
    with SMTPServer() as smtp:
        worker_factory(smtp, MEDIA_ROOT=tmp_path / "media", REPORT_CHUNK_ROWS=40)
        client = client_as(arjen)
        response = client.post(reverse("guidelines:report_pack"), {"guideline": "social-media", "language": "en"})
        report = Report.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse(
            "guidelines:report_status", args=[report.verification_code])
        waiting = client.get(response["Location"]).content.decode()
        assert 'http-equiv="refresh"' in waiting  # the page refreshes itself until the report is ready
        assert wait_for(lambda: Report.objects.get().status in ("done", "failed"), timeout=120), (
            (tmp_path / "worker.log").read_text())
        report.refresh_from_db()
    assert report.status == "done", report.error
    # 96 employees (95 + Bob): 3 chunks of 40 rows; 46 outstanding: 2 chunks.
    assert (report.progress, report.progress_total, report.rows) == (5, 5, 96)
    page = client.get(reverse("guidelines:report_status", args=[report.verification_code])).content.decode()
    assert "Download the PDF" in page and 'http-equiv="refresh"' not in page
    download = client.get(reverse("guidelines:report_download", args=[report.verification_code]))
    content = b"".join(download.streaming_content)
    path = tmp_path / "pack.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout
    pages = text.split("\f")[:-1]
    assert len(pages) == report.pages
    assert [re.search(r"Page (\d+) of (\d+)", p).groups() for p in pages] == [
        (str(n), str(len(pages))) for n in range(1, len(pages) + 1)]
    assert sum(len(re.findall(r"\bP\d{4}\b", p)) for p in pages if "Per-employee acknowledgements" in p) == 95
    assert verification.find_by_content(content)[0] == report  # the stored SHA-256 matches the download
    assert not jobs.work_dir(report).exists()  # the parts are cleaned up
