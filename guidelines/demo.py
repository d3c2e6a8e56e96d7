"""Demo and scale data: the social media guideline, a small organisation, a realistic history."""

import random
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from psycopg import sql

from . import chain, checkpoints, comprehension, publishing, questions, services
from .models import (
    BATCH_ROWS,
    LANGUAGES,
    Acknowledgement,
    Department,
    Employee,
    Guideline,
    QuizAttempt,
    Reading,
    Version,
    VersionText,
)
from .organisation import recorded

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


def _question(text, choices, correct, hint):
    """A question as comprehension.set_questions reads it, from (nl, en) pairs."""
    pair = lambda value: {"nl": value[0], "en": value[1]}  # noqa: E731
    return {"text": pair(text), "choices": [pair(choice) for choice in choices], "correct": correct,
            "hint": pair(hint)}


# Version 2's comprehension check, on what changed. With the share of employees whose first answer
# was wrong: the reporting deadline is the rule the demo dashboard shows as not understood.
V2_QUESTIONS = [
    (_question(("Mag je een interne notitie in een openbare AI-chatbot plakken om hem korter te maken?",
                "May you paste an internal memo into a public AI chatbot to shorten it?"),
               [("Ja, als er geen klantnamen in staan.", "Yes, if it holds no client names."),
                ("Nee, interne documenten horen niet in openbare AI-diensten.",
                 "No, internal documents do not belong in public AI services."),
                ("Ja, met toestemming van je leidinggevende.", "Yes, with your manager's permission.")],
               1, ("Plak geen interne documenten, klantgegevens of broncode in openbare AI-diensten of chatbots.",
                   "Do not paste internal documents, client data or source code into public AI services or "
                   "chatbots.")), 0.1),
    (_question(("Binnen welke termijn meld je een schadelijk bericht?",
                "Within what time do you report a harmful post?"),
               [("Binnen 24 uur", "Within 24 hours"), ("Binnen een week", "Within a week"),
                ("Alleen als iemand erom vraagt", "Only when someone asks")],
               0, ("Meld het binnen 24 uur bij de afdeling Compliance via het meldpunt op het intranet.",
                   "Report it to the Compliance department within 24 hours through the reporting desk on the "
                   "intranet.")), 0.45),
    (_question(("Een finfluencer met wie je samenwerkt, wil een gesponsord bericht over een van onze "
                "producten plaatsen. Wat geldt?",
                "A finfluencer you work with wants to publish a sponsored post about one of our products. "
                "What applies?"),
               [("Dat mag, het is hun eigen account.", "That is fine, it is their own account."),
                ("Alleen via de goedgekeurde kanalen.", "Only through the approved channels.")],
               1, ("Dit geldt ook voor betaalde of gesponsorde berichten van zogenaamde finfluencers waarmee je "
                   "samenwerkt.",
                   "This also applies to paid or sponsored posts by so-called finfluencers you work with.")), 0.2),
]


def demo_text(version_number, language):
    source = (DEMO_TEXTS / f"social-media.v{version_number}.{language}.md").read_text(encoding="utf-8")
    title, _, body = source.partition("\n")
    return title.lstrip("# ").strip(), body.strip() + "\n"


def create_published_version(guideline, texts, *, author, approver, published_at, material=True, summaries=None,
                    consent=None, questions=(), require_read_to_end=False):
    """A published version. `consent`: (reference, note) of the works council's consent, given a week
    before publication and recorded the day after (for the text with its `questions`)."""
    version = Version.objects.create(guideline=guideline, leading_language="nl", created_by=author,
                                     require_read_to_end=require_read_to_end)
    VersionText.objects.bulk_create(
        VersionText(version=version, language=language, title=title, body=body,
                    change_summary=(summaries or {}).get(language, ""))
        for language, (title, body) in texts.items()
    )
    if questions:
        comprehension.set_questions(version=version, by=author, questions=list(questions))
    if consent:
        reference, note = consent
        consented_on = timezone.localdate(published_at - timedelta(days=7))
        publishing.record_works_council_consent(version=version, by=author, consented_on=consented_on,
                                                reference=reference.format(year=consented_on.year), note=note,
                                                at=published_at - timedelta(days=6))
    publishing.approve_version(version=version, by=approver, at=published_at - timedelta(days=2))
    return publishing.publish_version(version=version, by=author, material=material, at=published_at)


def _answer_check(employee, questions, *, read_at, acknowledged_at, rng):
    """The employee's answers to a version's check between reading and acknowledging: a wrong first answer
    with the question's share, then the right one. Stored (append-only) as the live page stores them."""
    attempts = []
    for question, wrong_share in questions:
        if rng.random() < wrong_share:
            wrong = rng.choice([n for n in range(len(question.choices)) if n != question.correct])
            attempts.append(QuizAttempt(employee=employee, question=question, choice=wrong, correct=False))
        attempts.append(QuizAttempt(employee=employee, question=question, choice=question.correct, correct=True))
    # Spread over the time between reading to the end and acknowledging, in the order given.
    step = (acknowledged_at - read_at) / (len(attempts) + 1)
    for number, attempt in enumerate(attempts, start=1):
        attempt.answered_at = read_at + step * number
    QuizAttempt.objects.bulk_create(attempts)


def _history(employees, version, *, share, start, spread_days, rng, always=(), wrong_shares=()):
    """Readings and acknowledgements for a share of employees, spread over the days after `start`. With a
    comprehension check (`wrong_shares`: per question, the share whose first answer is wrong) each
    acknowledgement seals the answers stored before it."""
    texts = {text.language: text for text in version.texts.all()}
    questions = list(zip(comprehension.questions_of(version), wrong_shares, strict=True))
    acks, readings = [], []
    spread = max(60, min(spread_days * 24 * 60, int((timezone.now() - start).total_seconds() // 60)))
    for employee in employees:
        if rng.random() >= share and employee not in always:
            continue
        acknowledged_at = start + timedelta(minutes=rng.randint(30, spread - 1))
        opened_at = acknowledged_at - timedelta(minutes=rng.randint(2, 25))
        meta = services.RequestMeta(
            channel=rng.choice([Acknowledgement.Channel.WEB, Acknowledgement.Channel.EMAIL]),
            auth_method="password",
            ip_address=f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            user_agent=USER_AGENT,
        )
        readings.append(Reading(employee=employee, version=version, first_opened_at=opened_at))
        # Most pages reported the reading; about one in ten was read without JavaScript (opened only).
        # A version that requires it was read to the end by everyone who acknowledged it.
        read_to_end_at = seconds_on_text = None
        if version.require_read_to_end or rng.random() >= 0.1:
            seconds_on_text = rng.randint(40, int((acknowledged_at - opened_at).total_seconds()) // 2)
            read_to_end_at = opened_at + timedelta(seconds=seconds_on_text)
        answers = ""
        if questions:
            _answer_check(employee, questions, read_at=read_to_end_at or opened_at, acknowledged_at=acknowledged_at,
                          rng=rng)
            answers = comprehension.final_answers(employee, version)
        acks.append(services.build_acknowledgement(
            employee=employee, version=version, text=texts[employee.language], at=acknowledged_at, meta=meta,
            first_opened_at=opened_at, read_to_end_at=read_to_end_at, seconds_on_text=seconds_on_text,
            answers=answers,
        ))
    return acks, readings


@transaction.atomic
def load_demo(*, seed=7):
    """The demo organisation. Returns False (and changes nothing) when it is already loaded."""
    if Guideline.objects.filter(slug="social-media").exists():
        return False
    with recorded(source="demo"):  # the organisation's history says where these people came from
        return _load_demo(seed)


def _load_demo(seed):
    User = get_user_model()
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
    manager = person("E0002", "manager@example.com", "Martin", "Manager", "Operations", director, is_staff=True)
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

    # Rules on employee conduct: the works council consents to every version (WOR art. 27).
    guideline = Guideline.objects.create(slug="social-media", title_nl="Richtlijn sociale media",
                                         title_en="Social media guideline", owner=hr.user, due_days=30,
                                         requires_works_council_consent=True)
    v1_published = now - timedelta(days=190)
    v1 = create_published_version(guideline, {lang: demo_text(1, lang) for lang in LANGUAGES},
                         author=hr.user, approver=manager.user, published_at=v1_published,
                         consent=("OR-{year}-31", ""))
    joined_before_v2 = [e for e in staff if e.start_date < (now - timedelta(days=15)).date()]
    # Emma (the demo employee) acknowledged version 1 but not yet version 2, so she sees what changed.
    acks, readings = _history(joined_before_v2, v1, share=0.93, start=v1_published, spread_days=40, rng=rng,
                              always=[employee])
    v2_published = now - timedelta(days=12)
    v2 = create_published_version(guideline, {lang: demo_text(2, lang) for lang in LANGUAGES},
                         author=hr.user, approver=manager.user, published_at=v2_published,
                         summaries=CHANGE_SUMMARIES,
                         consent=("OR-{year}-04", "Consent on condition that the reporting desk is evaluated "
                                                  "after a year."),
                         questions=[question for question, _share in V2_QUESTIONS], require_read_to_end=True)
    v2_candidates = [e for e in staff if e.pk != employee.pk]
    more_acks, more_readings = _history(v2_candidates, v2, share=0.55, start=v2_published, spread_days=11, rng=rng,
                                           wrong_shares=[share for _question, share in V2_QUESTIONS])
    all_acks = sorted(acks + more_acks, key=lambda ack: ack.acknowledged_at)
    Reading.objects.bulk_create(readings + more_readings)
    services.append_seeded_acknowledgements(all_acks)
    _threads(v2, emma=employee, hr=hr, acknowledged={ack.employee_id for ack in more_acks}, staff=staff)
    services.record_audit_event(action="demo_loaded", employees=len(staff), acknowledgements=len(all_acks))
    try:
        checkpoints.make()  # the first checkpoint of the demo chain; beat makes one every day
    except checkpoints.TimestampUnavailable:
        pass  # no authority to ask now: the daily task will
    return True


def _threads(version, *, emma, hr, acknowledged, staff):
    """Questions and an objection on version 2, through the services as the pages make them (their
    e-mails go out when a worker runs): Emma's question, answered by HR; an open question; an objection
    from someone who has not acknowledged."""
    meta = services.RequestMeta(auth_method="password", ip_address="10.3.20.17", user_agent=USER_AGENT)
    question = questions.ask(
        employee=emma, version=version, language="en",
        text="Does the rule on public AI services also cover the translation website I use for e-mails to "
             "clients?")
    questions.answer(
        question=question, by=hr.user,
        text="Yes: a translation website is a public AI service too, and e-mails to clients hold client data. "
             "Use the translation tool on the intranet instead; it keeps the text inside our organisation.")
    pending = [e for e in staff if e.pk not in acknowledged and e.pk not in (emma.pk, hr.pk)
               and e.language == "nl" and e.manager_id]
    questions.ask(employee=pending[0], version=version, language="nl",
                  text="Mag ik een vacature van ons op mijn privé-LinkedIn delen, of moet dat via Communicatie?")
    services.record_reading(employee=pending[1], version=version)  # the objection records when they opened it
    questions.record_objection(
        employee=pending[1], version=version, language="nl", kind=questions.Kind.OBJECTION, meta=meta,
        reason="Ik werk samen met een finfluencer die zelf bepaalt wat hij plaatst. Het verbod op gesponsorde "
               "berichten buiten de goedgekeurde kanalen maakt die samenwerking onmogelijk.")


def _scale_history(staff, version, *, share, rng):
    """Acknowledgements and readings as plain rows (no model instances: 100,000s of them)."""
    texts = {text.language: text for text in version.texts.all()}
    statements = {
        language: services.acknowledgement_statement(title=text.title, number=version.number, language=language)
        for language, text in texts.items()
    }
    addresses = [services.minimised_ip(f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
                 for _ in range(1000)]
    acks, readings = [], []
    # Spread over the days after publication, never later than now.
    spread = max(60, min(9 * 24 * 60, int((timezone.now() - version.published_at).total_seconds() // 60)))
    for person in staff:
        if rng.random() >= share:
            continue
        acknowledged_at = version.published_at + timedelta(minutes=rng.randint(30, spread - 1))
        opened_at = acknowledged_at - timedelta(minutes=rng.randint(2, 25))
        readings.append(SimpleNamespace(employee_id=person.id, version_id=version.pk, first_opened_at=opened_at))
        acks.append(SimpleNamespace(
            guideline=version.guideline, version=version, employee_id=person.id, guideline_id=version.guideline_id,
            version_id=version.pk, major=version.major, cycle=1, language=person.language,
            content_hash=texts[person.language].content_hash, statement=statements[person.language],
            acknowledged_at=acknowledged_at, first_opened_at=opened_at,
            channel=rng.choice([Acknowledgement.Channel.WEB, Acknowledgement.Channel.EMAIL]),
            auth_method="password",
            ip_address=rng.choice(addresses),
            user_agent=USER_AGENT, employee_number=person.number, employee_name=person.name,
            department_name=person.department, manager_employee_number=person.manager_number,
            manager_name=person.manager_name, sso_subject="", sso_amr="", sso_acr="",
            read_to_end_at=opened_at + timedelta(minutes=1), seconds_on_text=60, answers="",
            seal_format=chain.CURRENT_SEAL_FORMAT,
        ))
    return acks, readings


def copy_rows(model, rows):
    """Insert rows (objects with the model's attnames) with PostgreSQL COPY, or bulk_create elsewhere."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            (model(**{field.attname: getattr(row, field.attname) for field in fields}) for row in rows),
            batch_size=BATCH_ROWS,
        )
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(f.column) for f in fields)
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([getattr(row, field.attname) for field in fields])


def seed_scale(*, employees, versions, seed=11, acknowledged=0.9):
    """Bulk data for benchmarks: one guideline with `versions` major versions and `employees` people.

    Acknowledgements (and readings): `acknowledged` (90 %), 80 % and 70 % of employees for the three
    latest versions.
    """
    User = get_user_model()
    rng = random.Random(seed)
    now = timezone.now()
    password = make_password(DEMO_PASSWORD)
    author, _ = User.objects.get_or_create(username="scale-author@example.com",
                                           defaults={"email": "scale-author@example.com"})
    Group.objects.get(name="HR").user_set.add(author)
    author = User.objects.get(pk=author.pk)  # fresh permission cache
    approver, _ = User.objects.get_or_create(username="scale-approver@example.com",
                                             defaults={"email": "scale-approver@example.com"})
    Group.objects.get(name="Approvers").user_set.add(approver)
    approver = User.objects.get(pk=approver.pk)  # fresh permission cache
    departments = [Department.objects.get_or_create(name=f"Scale department {i:02d}")[0] for i in range(20)]
    first_number = Employee.objects.filter(employee_number__startswith="S").count() + 1
    numbers = range(first_number, first_number + employees)
    start = (now - timedelta(days=3000)).date()

    with transaction.atomic():
        last_user = User.objects.aggregate(last=Max("pk"))["last"] or 0
        last_employee = Employee.objects.aggregate(last=Max("pk"))["last"] or 0
        people = [
            SimpleNamespace(number=f"S{n:07d}", email=f"scale{n}@example.com", first=rng.choice(FIRST_NAMES),
                            last=rng.choice(LAST_NAMES), department=departments[(n - first_number) % 20],
                            language="nl" if (n - first_number) % 3 else "en")
            for n in numbers
        ]
        copy_rows(User, (
            SimpleNamespace(password=password, last_login=None, is_superuser=False, username=p.email,
                            first_name=p.first, last_name=p.last, email=p.email, is_staff=False, is_active=True,
                            date_joined=now)
            for p in people
        ))
        user_ids = dict(User.objects.filter(pk__gt=last_user).values_list("username", "pk"))
        # The first employee of each department manages the rest of it.
        heads = Employee.objects.bulk_create(
            Employee(user_id=user_ids[p.email], employee_number=p.number, department=p.department,
                     start_date=start, language=p.language)
            for p in people[: len(departments)]
        )
        head_of = {head.department_id: (head, person) for head, person in zip(heads, people, strict=False)}
        copy_rows(Employee, (
            SimpleNamespace(user_id=user_ids[p.email], employee_number=p.number, department_id=p.department.pk,
                            manager_id=head_of[p.department.pk][0].pk, start_date=start, end_date=None,
                            language=p.language)
            for p in people[len(heads):]
        ))
        employee_ids = dict(Employee.objects.filter(pk__gt=last_employee).values_list("employee_number", "pk"))
    for p in people:
        head, head_person = head_of[p.department.pk]
        is_head = head.employee_number == p.number
        p.id, p.name = employee_ids[p.number], f"{p.first} {p.last}"
        p.department, p.manager_number = p.department.name, "" if is_head else head.employee_number
        p.manager_name = "" if is_head else f"{head_person.first} {head_person.last}"

    slug = f"scale-{Guideline.objects.filter(slug__startswith='scale-').count() + 1}"
    guideline = Guideline.objects.create(slug=slug, title_nl=f"Schaalrichtlijn {slug}",
                                         title_en=f"Scale guideline {slug}", owner=author, due_days=30)
    published = []
    for number in range(1, versions + 1):
        texts = {}
        for language in LANGUAGES:
            title, body = demo_text(2 if number > 1 else 1, language)
            texts[language] = (title, f"{body}\n\nRevision {number}.\n")
        published.append(create_published_version(
            guideline, texts, author=author, approver=approver,
            published_at=now - timedelta(days=10 * (versions - number) + 1),
        ))
    for version in published:
        version.guideline = guideline
    acks, readings = [], []
    for version, share in zip(published[-3:][::-1], (acknowledged, 0.8, 0.7), strict=False):
        version_acks, version_readings = _scale_history(people, version, share=share, rng=rng)
        acks.extend(version_acks)
        readings.extend(version_readings)
    acks.sort(key=lambda ack: ack.acknowledged_at)
    with transaction.atomic():
        copy_rows(Reading, readings)
        services.append_seeded_acknowledgements(acks, insert=lambda sealed: copy_rows(Acknowledgement, sealed))
    if connection.vendor == "postgresql":
        # Fresh statistics, as autovacuum would produce later: without them the planner
        # assumes the bulk-loaded tables are empty and picks poor plans.
        with connection.cursor() as cursor:
            for model in (User, Employee, Reading, Acknowledgement):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return guideline, len(people), len(acks)
