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
    return Guideline.objects.create(slug=slug, title="Social media guideline", owner=owner, **fields)


def tamper(sql, params=()):
    """Change evidence as the owner or a superuser with direct database access could: with the
    triggers switched off."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
