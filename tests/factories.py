"""Small explicit factories. No randomness: evidence fields must be predictable in tests."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from guidelines import publishing
from guidelines.models import Department, Employee, Guideline, Version, VersionText

PASSWORD = "correct horse battery staple"

BODY = {
    "nl": "# Richtlijn\n\n## Uitgangspunten\nWees respectvol.\n\n## Melden\nMeld het direct.\n",
    "en": "# Guideline\n\n## Principles\nBe respectful.\n\n## Reporting\nReport it straight away.\n",
}


def make_user(email, *, first_name="", last_name="", groups=(), **extra):
    user = get_user_model().objects.create_user(
        username=email, email=email, password=PASSWORD, first_name=first_name, last_name=last_name, **extra
    )
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def make_employee(email, number, *, department="Operations", manager=None, language="en", **user_fields):
    first_name = email.split("@")[0].capitalize()
    user = make_user(email, first_name=first_name, last_name="Example", **user_fields)
    dept = Department.objects.get_or_create(name=department)[0] if department else None
    return Employee.objects.create(user=user, employee_number=number, department=dept, manager=manager,
                                   language=language)


TITLES = {"nl": "Richtlijn sociale media", "en": "Social media guideline"}


def make_draft(guideline, *, author, bodies=None):
    version = Version.objects.create(guideline=guideline, created_by=author)
    for language in ("nl", "en"):
        VersionText.objects.create(version=version, language=language, title=TITLES[language],
                                   body=(bodies or BODY)[language])
    return version


def publish(guideline, *, author, approver, material=True, bodies=None):
    version = make_draft(guideline, author=author, bodies=bodies)
    publishing.approve_version(version=version, by=approver)
    return publishing.publish_version(version=version, by=author, material=material)


def make_guideline(owner, *, slug="social-media", **fields):
    titles = {"title_nl": TITLES["nl"], "title_en": TITLES["en"], **fields}
    return Guideline.objects.create(slug=slug, owner=owner, **titles)


def tamper(sql, params=()):
    """Change evidence as the owner or a superuser with direct database access could: with the
    triggers switched off."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def sign_in(client, person, *, second_factor=None, minutes_ago=0):
    """Sign `person` (a user or an employee) in on a test client, as after allauth's sign-in with a
    password, and for privileged roles (or with second_factor=True) the second factor they need
    (guidelines.middleware.SecondFactorMiddleware), `minutes_ago`."""
    import time

    from allauth.account.internal.flows import login as allauth_login
    from allauth.account.internal.userkit import user_id_to_str

    user = getattr(person, "user", person)
    client.force_login(user)
    session = client.session
    at = time.time() - minutes_ago * 60
    records = [{"method": "password", "at": at, "email": user.email}]
    if second_factor is None:
        from guidelines.access import is_privileged

        second_factor = is_privileged(user)
    if second_factor:
        records.append({"method": "mfa", "at": at, "type": "totp"})
    # Where allauth keeps the methods of this session's sign-in, and whose they are.
    session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY] = records
    session[allauth_login._AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    session.save()
    return client


def give_authenticator(user):
    """An authenticator app (TOTP) for `user`; returns its secret (totp_code makes its codes)."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def totp_code(secret, *, used=None):
    """A code of the authenticator app that is valid now. Each code works once: pass the same `used`
    set to get a different valid code for every sign-in (within MFA_TOTP_TOLERANCE periods of 30 s)."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time

    counters = list(yield_hotp_counters_from_time())
    now = counters[len(counters) // 2]
    counter = next(c for c in sorted(counters, key=lambda c: (abs(c - now), c)) if c not in (used or set()))
    if used is not None:
        used.add(counter)
    return format_hotp_value(hotp_value(secret, counter))
