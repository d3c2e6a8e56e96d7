"""200 acknowledgements posted at the same moment (4 per employee, 50 employees) to gunicorn with
several workers on PostgreSQL: exactly 50 records, no 5xx, one unbroken chain with no fork."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test import Client

from guidelines import services
from guidelines.models import Acknowledgement

from .factories import make_employee, sign_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROOT = Path(__file__).resolve().parent.parent
EMPLOYEES, POSTS_EACH, WORKERS = 50, 4, 4


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn():
    """gunicorn serving the application on the test database, with WORKERS processes."""
    db = connection.settings_dict
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
           f"{db['NAME']}", "DATABASE_CONN_MAX_AGE": "0", "ALLOWED_HOSTS": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "intranet.wsgi", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
         "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"{base}/healthz/", timeout=2).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):  # still starting (slowly on a busy machine)
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError(f"gunicorn did not start: {process.stdout.read()}")
    yield base
    process.terminate()
    process.wait(timeout=30)


def signed_in_browser(base, employee, guideline_url):
    """A requests session with the employee's Django session and the page's CSRF token."""
    client = Client()
    sign_in(client, employee)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value, domain="127.0.0.1")
    page = session.get(f"{base}{guideline_url}", timeout=30)
    assert page.status_code == 200, page.status_code
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session, token


def test_simultaneous_acknowledgements_make_one_record_each_and_one_chain(gunicorn, version_1):
    people = [make_employee(f"burst{n}@example.com", f"E8{n:03d}") for n in range(EMPLOYEES)]
    url = "/guidelines/social-media/"
    browsers = [signed_in_browser(gunicorn, person, url) for person in people]
    start = threading.Barrier(EMPLOYEES * POSTS_EACH)

    def post(browser):
        session, token = browser
        start.wait(timeout=60)
        response = session.post(f"{gunicorn}{url}acknowledge/", allow_redirects=False, timeout=60,
                                data={"csrfmiddlewaretoken": token, "version": version_1.pk, "language": "en",
                                      "confirm": "on"}, headers={"Referer": f"{gunicorn}{url}"})
        # The first of an employee's posts is recorded (a redirect to its receipt); the others find it
        # and show "already acknowledged".
        already = response.status_code == 200 and "already" in response.text.lower()
        return "already" if already else response.status_code

    with ThreadPoolExecutor(max_workers=EMPLOYEES * POSTS_EACH) as pool:
        statuses = list(pool.map(post, [browser for browser in browsers for _ in range(POSTS_EACH)]))

    assert Counter(statuses) == {302: EMPLOYEES, "already": EMPLOYEES * (POSTS_EACH - 1)}, Counter(statuses)
    assert Acknowledgement.objects.count() == EMPLOYEES
    assert sorted(Acknowledgement.objects.values_list("employee__employee_number", flat=True)) == sorted(
        person.employee_number for person in people)
    sequences = list(Acknowledgement.objects.order_by("sequence").values_list("sequence", "previous_seal"))
    assert [sequence for sequence, _seal in sequences] == list(range(1, EMPLOYEES + 1))
    assert len({seal for _sequence, seal in sequences}) == EMPLOYEES  # no two records link to the same one
    result = services.verify_evidence()
    assert result.intact and result.checked == EMPLOYEES
