"""Demo and scale data: the social media guideline, a small organisation, a realistic history."""

import random
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from . import services
from .models import Acknowledgement, Department, Employee, Guideline, Reading, Version, VersionText

DEMO_TEXTS = Path(__file__).resolve().parent / "fixtures" / "demo-guidelines"
DEMO_PASSWORD = "demo-password"
DEPARTMENTS = ["Compliance", "Customer Service", "Finance", "HR", "IT", "Operations", "Risk Management"]
FIRST_NAMES = ["Anna", "Bram", "Chantal", "Daan", "Eva", "Fleur", "Gijs", "Hanna", "Ivo", "Julia", "Koen",
               "Lotte", "Milan", "Noor", "Olivier", "Pien", "Quinten", "Roos", "Sem", "Tess", "Umut", "Vera",
               "Wouter", "Yara", "Zeynep", "Mohamed", "Sanne", "Thijs"]
LAST_NAMES = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot",
              "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "El Amrani", "Yilmaz"]
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0"
CHANGE_SUMMARIES = {
    "nl": "Nieuw: geen interne documenten, klantgegevens of broncode in openbare AI-diensten; een paragraaf "
          "over beleggingsadvies en financiële uitingen; schadelijke berichten meld je binnen 24 uur via het "
          "meldpunt op het intranet.",
    "en": "New: no internal documents, client data or source code in public AI services; a section on "
          "investment advice and financial promotions; report harmful posts within 24 hours through the "
          "reporting desk on the intranet.",
}


def demo_text(version_number, language):
    source = (DEMO_TEXTS / f"social-media.v{version_number}.{language}.md").read_text(encoding="utf-8")
    title, _, body = source.partition("\n")
    return title.lstrip("# ").strip(), body.strip() + "\n"


def _create_version(guideline, texts, *, author, approver, published_at, material=True, summaries=None):
    version = Version.objects.create(guideline=guideline, leading_language="nl", created_by=author)
    VersionText.objects.bulk_create(
        VersionText(version=version, language=language, title=title, body=body,
                    change_summary=(summaries or {}).get(language, ""))
        for language, (title, body) in texts.items()
    )
    services.approve_version(version=version, by=approver, at=published_at - timedelta(days=2))
    return services.publish_version(version=version, by=author, material=material, at=published_at)


def _history(employees, version, *, share, start, spread_days, rng, always=()):
    """Readings and acknowledgements for a share of employees, spread over the days after `start`."""
    texts = {text.language: text for text in version.texts.all()}
    acks, readings = [], []
    for employee in employees:
        if rng.random() >= share and employee not in always:
            continue
        acknowledged_at = start + timedelta(minutes=rng.randint(30, spread_days * 24 * 60))
        opened_at = acknowledged_at - timedelta(minutes=rng.randint(2, 45))
        meta = services.RequestMeta(
            channel=rng.choice([Acknowledgement.Channel.WEB, Acknowledgement.Channel.EMAIL]),
            auth_method="password",
            ip_address=f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            user_agent=USER_AGENT,
        )
        readings.append(Reading(employee=employee, version=version, first_opened_at=opened_at))
        acks.append(services.build_acknowledgement(
            employee=employee, version=version, text=texts[employee.language], at=acknowledged_at, meta=meta,
            first_opened_at=opened_at,
        ))
    return acks, readings


@transaction.atomic
def load_demo(*, seed=7):
    """The demo organisation. Returns False (and changes nothing) when it is already loaded."""
    User = get_user_model()
    if Guideline.objects.filter(slug="social-media").exists():
        return False
    rng = random.Random(seed)
    password = make_password(DEMO_PASSWORD)
    now = timezone.now()
    departments = {name: Department.objects.create(name=name) for name in DEPARTMENTS}

    def person(number, email, first, last, department, manager=None, language="nl", start=None, **flags):
        user = User.objects.create(username=email, email=email, first_name=first, last_name=last,
                                   password=password, **flags)
        return Employee.objects.create(user=user, employee_number=number, department=departments[department],
                                       manager=manager, language=language,
                                       start_date=start or (now - timedelta(days=900)).date())

    director = person("E0001", "director@example.com", "Marieke", "van Dam", "Operations")
    manager = person("E0002", "manager@example.com", "Martin", "Manager", "Operations", director)
    employee = person("E0003", "employee@example.com", "Emma", "Employee", "Operations", manager, language="en")
    hr = person("E0004", "hr@example.com", "Hilde", "de Haan", "HR", director, is_staff=True)
    auditor = person("E0005", "auditor@example.com", "Arjen", "Auditor", "Compliance", director)
    Group.objects.get(name="HR").user_set.add(hr.user)
    Group.objects.get(name="Approvers").user_set.add(manager.user)
    Group.objects.get(name="Auditors").user_set.add(auditor.user)

    staff = [director, manager, employee, hr, auditor]
    managers = {name: person(f"E{len(staff) + i + 1:04d}", f"head.{name.split()[0].lower()}@example.com",
                             rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), name, director)
                for i, name in enumerate(DEPARTMENTS)}
    staff += managers.values()
    for number in range(len(staff) + 1, 61):
        department = rng.choice(DEPARTMENTS)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{number}".lower().replace(" ", "") + "@example.com"
        recent_joiner = number > 56
        staff.append(person(
            f"E{number:04d}", email, first, last, department,
            manager if department == "Operations" and number % 2 else managers[department],
            language=rng.choice(["nl", "nl", "en"]),
            start=(now - timedelta(days=rng.randint(3, 12) if recent_joiner else rng.randint(200, 4000))).date(),
        ))

    guideline = Guideline.objects.create(slug="social-media", title="Social media guideline", owner=hr.user,
                                         due_days=30)
    v1_published = now - timedelta(days=190)
    v1 = _create_version(guideline, {lang: demo_text(1, lang) for lang in ("nl", "en")},
                         author=hr.user, approver=manager.user, published_at=v1_published)
    joined_before_v2 = [e for e in staff if e.start_date < (now - timedelta(days=15)).date()]
    # Emma (the demo employee) acknowledged version 1 but not yet version 2, so she sees what changed.
    acks, readings = _history(joined_before_v2, v1, share=0.93, start=v1_published, spread_days=40, rng=rng,
                              always=[employee])
    v2_published = now - timedelta(days=12)
    v2 = _create_version(guideline, {lang: demo_text(2, lang) for lang in ("nl", "en")},
                         author=hr.user, approver=manager.user, published_at=v2_published,
                         summaries=CHANGE_SUMMARIES)
    v2_candidates = [e for e in staff if e.pk != employee.pk]
    more_acks, more_readings = _history(v2_candidates, v2, share=0.55, start=v2_published, spread_days=11, rng=rng)
    all_acks = sorted(acks + more_acks, key=lambda ack: ack.acknowledged_at)
    Reading.objects.bulk_create(readings + more_readings)
    services.append_seeded_acknowledgements(all_acks)
    services.record_audit_event(action="demo_loaded", employees=len(staff), acknowledgements=len(all_acks))
    return True


def seed_scale(*, employees, versions, seed=11, batch_size=5000):
    """Bulk data for benchmarks: one guideline with `versions` major versions and `employees` people.

    Acknowledgements: 90 %, 80 % and 70 % of employees for the three latest versions.
    """
    User = get_user_model()
    rng = random.Random(seed)
    now = timezone.now()
    password = make_password(DEMO_PASSWORD)
    author, _ = User.objects.get_or_create(username="scale-author@example.com",
                                           defaults={"email": "scale-author@example.com"})
    approver, _ = User.objects.get_or_create(username="scale-approver@example.com",
                                             defaults={"email": "scale-approver@example.com"})
    approver.user_permissions.add(*Group.objects.get(name="Approvers").permissions.all())
    approver = User.objects.get(pk=approver.pk)  # fresh permission cache
    departments = [Department.objects.get_or_create(name=f"Scale department {i:02d}")[0] for i in range(20)]
    first_number = Employee.objects.filter(employee_number__startswith="S").count() + 1

    users = [User(username=f"scale{n}@example.com", email=f"scale{n}@example.com", password=password,
                  first_name=rng.choice(FIRST_NAMES), last_name=rng.choice(LAST_NAMES))
             for n in range(first_number, first_number + employees)]
    User.objects.bulk_create(users, batch_size=batch_size)
    users = User.objects.filter(username__startswith="scale", email__in=[u.email for u in users]).order_by("pk")
    start = (now - timedelta(days=3000)).date()
    staff = [
        Employee(user=user, employee_number=f"S{first_number + index:07d}",
                 department=departments[index % len(departments)], start_date=start,
                 language="nl" if index % 3 else "en")
        for index, user in enumerate(users.iterator(chunk_size=batch_size))
    ]
    Employee.objects.bulk_create(staff, batch_size=batch_size)
    # The first employee of each department manages the rest of it.
    heads = {employee.department_id: employee for employee in staff[: len(departments)]}
    for employee in staff[len(departments):]:
        employee.manager = heads[employee.department_id]
    Employee.objects.bulk_update(staff[len(departments):], ["manager"], batch_size=batch_size)

    slug = f"scale-{Guideline.objects.filter(slug__startswith='scale-').count() + 1}"
    guideline = Guideline.objects.create(slug=slug, title=f"Scale guideline {slug}", owner=author, due_days=30)
    published = []
    for number in range(1, versions + 1):
        texts = {}
        for language in ("nl", "en"):
            title, body = demo_text(2 if number > 1 else 1, language)
            texts[language] = (title, f"{body}\n\nRevision {number}.\n")
        published.append(_create_version(
            guideline, texts, author=author, approver=approver,
            published_at=now - timedelta(days=10 * (versions - number) + 1),
        ))
    for version in published:
        version.guideline = guideline
    acks = []
    for version, share in zip(published[-3:][::-1], (0.9, 0.8, 0.7), strict=False):
        version_acks, _ = _history(staff, version, share=share, start=version.published_at, spread_days=9,
                                   rng=rng)
        acks.extend(version_acks)
    acks.sort(key=lambda ack: ack.acknowledged_at)
    services.append_seeded_acknowledgements(acks, batch_size=batch_size)
    return guideline, len(staff), len(acks)
