"""Schemathesis against the live OpenAPI schema (served at /api/v1/schema/, called through the WSGI
application): generated requests to every operation, with every check Schemathesis has (no 5xx,
responses and status codes as the schema says, bad input refused, authentication enforced)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from guidelines import publishing, questions, services
from guidelines.models import Objection

from ..factories import make_draft
from .conftest import service_account
from .test_tokens import ENDPOINTS


@pytest.fixture
def api_schema(db, settings, tmp_path, version_1, alice, hilde, bob, web_meta, fresh_rate_limits):
    settings.MEDIA_ROOT = tmp_path
    settings.API_REPORT_RATE = (10**6, 3600)
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    # Version 2.0 with the works council's consent: the versions' answers hold a consent and a null one.
    guideline = version_1.guideline
    guideline.requires_works_council_consent = True
    guideline.save()
    draft = make_draft(guideline, author=hilde, bodies={"nl": "# Nieuw\n", "en": "# New\n"})
    publishing.record_works_council_consent(version=draft, by=hilde, consented_on=timezone.localdate(),
                                            reference="OR-2026-14")
    publishing.approve_version(version=draft, by=bob.user)
    version_2 = publishing.publish_version(version=draft, by=hilde, material=True)
    # Objections with and without HR's handling: the list's answers hold a resolution and a null one.
    for employee, kind in ((alice, "objection"), (bob, "exception")):
        questions.record_objection(employee=employee, version=version_2, language="nl", kind=kind,
                                   reason="Te streng.", meta=web_meta)
    exception = Objection.objects.get(kind="exception")
    questions.resolve(objection=exception, by=hilde, outcome="exempted", note="Vrijgesteld.")
    from intranet.wsgi import application

    # As Django's test client does: the test's transaction holds the connection, which the end of each
    # request would otherwise close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(reverse("api:schema"), application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_every_operation_keeps_to_the_schema(api_schema, issue):
    """Each operation in turn, so that one failure does not hide the others (the pytest plugin of
    Schemathesis does not run on this pytest)."""
    headers = {"Authorization": f"Bearer {issue(service_account('fuzz@example.com', 'Auditors'))}"}
    failures, operations = {}, [result.ok() for result in api_schema.get_all_operations()]

    @settings(max_examples=30, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def exercise(operation, data):
        case = data.draw(operation.as_strategy())
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance] if _semantic(case) else [])

    for operation in operations:
        try:
            exercise(operation)
        except Exception as failure:  # collected, reported below with the operation's name
            failures[operation.label] = failure
    assert len(operations) == len(ENDPOINTS)
    assert not failures, "\n\n".join(f"{label}: {failure}" for label, failure in failures.items())


def test_sequences_of_calls_keep_to_the_schema(api_schema, issue):
    """Stateful: Schemathesis follows the links it infers between operations (a guideline's slug to its
    versions, a version's id to its status and employees, a requested pack's code to its page and its
    PDF) and checks every response on the way."""
    headers = {"Authorization": f"Bearer {issue(service_account('stateful@example.com', 'Auditors'))}"}
    base = api_schema.as_state_machine()
    assert len(base.bundles) >= 5  # the links it found: guidelines, versions, reports

    class Client(base):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # Every call here carries the valid token, so refusing bad tokens (ignored_auth) is left to
            # the test above and to test_tokens.py's matrix.
            excluded = [ignored_auth, *([positive_data_acceptance] if _semantic(case) else [])]
            case.validate_response(response, additional_checks=additional_checks, excluded_checks=excluded)

    Client.run(settings=settings(max_examples=15, stateful_step_count=6, deadline=None, derandomize=True,
                                 database=None, print_blob=False, suppress_health_check=list(HealthCheck)))


def _semantic(case):
    """A schema cannot say which cursors the API gave out, which days lie in the future or which
    guidelines exist: a schema-valid request may still be refused with a 400 that says why."""
    return case.method == "POST" or bool({"cursor", "as_of"} & set(case.query or {}))


def test_the_token_matrix_covers_every_operation_in_the_schema(client):
    served = client.get(reverse("api:schema"), headers={"accept": "application/json"}).json()
    operations = {(method, path) for path, item in served["paths"].items() for method in item}
    listed = {(method, reverse(name, args=args)) for method, name, args, _scope in ENDPOINTS}
    templated = set()
    for method, path in operations:
        matches = [url for m, url in listed if m == method and _fits(path, url)]
        assert matches, f"{method.upper()} {path} is not in the token matrix of test_tokens.py"
        templated.add((method, path))
    assert len(templated) == len(listed)


def _fits(template, url):
    import re

    pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
    return re.fullmatch(pattern, url) is not None


def test_the_docs_are_served_from_our_own_files(client):
    """Swagger UI from the sidecar's static files and our stylesheet: nothing from a CDN, no inline
    script or style for the Content-Security-Policy to block."""
    import re

    page = client.get(reverse("api:docs")).content.decode()
    addresses = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert addresses and all(address.startswith(("/static/", "/api/v1/")) for address in addresses), addresses
    assert "<style" not in page and not re.search(r"<script>(?!\s*</script>)", page)
    schema = client.get(reverse("api:schema")).content.decode()
    assert schema.startswith("openapi: 3.") and "bearerToken" in schema
