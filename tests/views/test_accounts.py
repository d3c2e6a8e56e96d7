"""Sign-in with django-allauth: e-mail + password, no public sign-up, password reset by e-mail."""

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from guidelines.models import Acknowledgement

from ..factories import PASSWORD, sign_in


def test_employee_signs_in_with_email_and_password(client, alice):
    response = client.post(reverse("account_login"), {"login": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("guidelines:home")
    assert client.get("/").status_code == 200


def test_wrong_password_shows_an_error_and_no_session(client, alice):
    response = client.post(reverse("account_login"), {"login": "alice@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert client.get("/").status_code == 302


def test_public_sign_up_is_closed(client, db):
    response = client.post(reverse("account_signup"),
                           {"email": "mallory@example.com", "password1": "Xy!12345678", "password2": "Xy!12345678"})
    assert "Sign Up Closed" in response.content.decode() or response.status_code in (403, 404)
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="mallory@example.com").exists()


def test_password_reset_sends_an_email_to_a_known_employee(client, alice):
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_sign_in_page_can_switch_language_before_login(client, db):
    response = client.post(reverse("set_language"), {"language": "nl", "next": reverse("account_login")})
    assert response.status_code == 302
    assert "Inloggen" in client.get(reverse("account_login")).content.decode()


def test_roles_exist_as_groups_with_their_permissions(db):
    def perms(name):
        return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=name).permissions.all()}

    assert "guidelines.manage" in perms("HR") and "guidelines.audit" not in perms("HR")
    assert perms("Approvers") >= {"guidelines.approve"} and "guidelines.manage" not in perms("Approvers")
    assert perms("Auditors") == {"guidelines.audit"}
    assert not any(p.endswith(("change_acknowledgement", "delete_acknowledgement")) for p in perms("HR"))


def _patterns(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


# verify/: the public check of a PDF (tests/test_public_verification.py), open on purpose.
PUBLIC = ("accounts/", "i18n/setlang/", "healthz/", "verify/")
# Programs' doors: the REST API and SCIM provisioning, opened by an API token.
MACHINE_INTERFACES = ("api/", "scim/")
OPEN_DOCUMENTS = ("api/v1/schema/", "api/v1/docs/")


def test_every_page_outside_sign_in_requires_login(client, db):
    """Walk the URL configuration: every route of ours redirects anonymous visitors to login."""
    checked = 0
    for route in _patterns(get_resolver()):
        if route.startswith(PUBLIC) or route.startswith("admin/") or "<" in route or "(?P" in route:
            continue
        response = client.get("/" + route)
        checked += 1
        if route.startswith(MACHINE_INTERFACES):
            # No sign-in page for a program: a token or a 401. The API's schema and its docs hold no data.
            assert response.status_code == (200 if route in OPEN_DOCUMENTS else 401), route
            continue
        assert response.status_code == 302 and "/accounts/login/" in response.url, route
    assert checked >= 2
    for url in ("/guidelines/social-media/", "/my/acknowledgements/1/", "/guidelines/x/acknowledge/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url, url


@pytest.mark.parametrize("method", ["get", "post"])
def test_admin_shows_acknowledgements_read_only(client, alice, version_1, web_meta, method):
    from django.contrib.auth import get_user_model

    from guidelines import services

    admin_user = get_user_model().objects.create_superuser("root@example.com", "root@example.com", PASSWORD)
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    sign_in(client, admin_user)
    change = reverse("admin:guidelines_acknowledgement_change", args=[ack.pk])
    delete = reverse("admin:guidelines_acknowledgement_delete", args=[ack.pk])
    if method == "get":
        page = client.get(change).content.decode()
        assert client.get(change).status_code == 200
        assert 'name="_save"' not in page
        assert client.get(reverse("admin:guidelines_acknowledgement_add")).status_code == 403
    else:
        assert client.post(change, {"channel": "email"}).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Acknowledgement.objects.get(pk=ack.pk).channel == "web"


def test_the_admin_neither_approves_nor_publishes(client, guideline, hilde, bob):
    """Approving and publishing happen on the HR pages, with the text in view and a confirmation: the
    admin's version list offers no action that would do either unread, in bulk."""
    from ..factories import make_draft

    draft = make_draft(guideline, author=hilde)
    changelist = reverse("admin:guidelines_version_changelist")
    bob.user.is_staff = True
    bob.user.save()
    for user, action in ((bob.user, "approve"), (hilde, "publish_material"), (hilde, "publish_editorial")):
        sign_in(client, user)
        page = client.get(changelist).content.decode()
        assert f'value="{action}"' not in page and 'name="action"' not in page
        client.post(changelist, {"action": action, "_selected_action": [draft.pk]})
        draft.refresh_from_db()
        assert (draft.status, draft.approved_by) == ("draft", None)


def test_hr_writes_a_draft_with_both_languages_in_the_admin(client, guideline, hilde):
    from guidelines.models import Version

    sign_in(client, hilde)
    form = {
        "guideline": guideline.pk, "leading_language": "nl", "effective_date": "",
        "texts-TOTAL_FORMS": "2", "texts-INITIAL_FORMS": "0", "texts-MIN_NUM_FORMS": "0", "texts-MAX_NUM_FORMS": "2",
        "texts-0-language": "nl", "texts-0-title": "Richtlijn", "texts-0-body": "Tekst", "texts-0-change_summary": "",
        "texts-1-language": "en", "texts-1-title": "Guideline", "texts-1-body": "Text", "texts-1-change_summary": "",
    }
    response = client.post(reverse("admin:guidelines_version_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    draft = Version.objects.get()
    assert (draft.status, draft.created_by, draft.texts.count()) == ("draft", hilde, 2)
