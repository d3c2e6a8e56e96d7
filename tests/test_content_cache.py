"""Released versions' texts and the diffs between them are read once per process (content.py)."""

import pytest
from django.core.cache import caches

from guidelines import content
from guidelines.models import VersionText

from .factories import make_draft, publish


@pytest.fixture(autouse=True)
def empty_content_cache():
    caches[content.CACHE].clear()
    yield
    caches[content.CACHE].clear()


def test_released_texts_are_read_once(version_1, django_assert_num_queries):
    with django_assert_num_queries(1):
        first = content.released_texts([version_1])
    with django_assert_num_queries(0):
        again = content.released_texts([version_1])
    assert sorted(first[version_1.pk]) == sorted(again[version_1.pk]) == ["en", "nl"]
    assert again[version_1.pk]["en"].body_html == VersionText.objects.get(version=version_1, language="en").body_html


def test_a_draft_is_read_every_time(guideline, hilde, version_1, django_assert_num_queries):
    draft = make_draft(guideline, author=hilde)
    content.released_texts([draft])
    VersionText.objects.filter(version=draft, language="en").update(title="Changed while still a draft")
    with django_assert_num_queries(1):
        assert content.released_texts([draft])[draft.pk]["en"].title == "Changed while still a draft"


def test_only_the_missing_versions_are_read(guideline, hilde, bob, version_1, django_assert_num_queries):
    content.released_texts([version_1])
    second = publish(guideline, author=hilde, approver=bob.user)
    with django_assert_num_queries(1):
        texts = content.released_texts([second, version_1, None])
    assert set(texts) == {version_1.pk, second.pk}


def test_the_diff_between_two_released_texts_is_computed_once(guideline, hilde, bob, version_1, monkeypatch):
    second = publish(guideline, author=hilde, approver=bob.user,
                     bodies={"nl": "# Richtlijn\n\nNieuw.\n", "en": "# Guideline\n\nNew.\n"})
    texts = content.released_texts([version_1, second])
    old, new = texts[version_1.pk]["en"], texts[second.pk]["en"]
    blocks = content.diff_between(old, new)
    assert blocks == content.diff_blocks(old.body, new.body)
    monkeypatch.setattr(content, "diff_blocks", lambda *args: pytest.fail("computed again"))
    assert content.diff_between(old, new) == blocks


def test_texts_that_are_not_published_are_not_cached_as_a_diff(guideline, hilde, version_1):
    draft = make_draft(guideline, author=hilde)
    old = VersionText.objects.get(version=version_1, language="en")
    new = VersionText.objects.get(version=draft, language="en")
    content.diff_between(old, new)
    new.body = "# Guideline\n\nRewritten.\n"
    assert content.diff_between(old, new) == content.diff_blocks(old.body, new.body)


def test_the_cached_parts_of_the_guideline_page_follow_publication_and_retirement(
        guideline, hilde, bob, alice, version_1, client_as, web_meta):
    """The header, the list of versions and the diff are rendered once per process; a new version or
    a retirement shows at once, and a reader in another language gets their own."""
    from guidelines import publishing, services

    client = client_as(alice)
    page = client.get("/guidelines/social-media/").content.decode()
    assert '<strong aria-current="page">1.0</strong>' in page and "All 1 version<" in page
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)

    publish(guideline, author=hilde, approver=bob.user, bodies={
        "nl": "# Richtlijn\n\nNieuw.\n", "en": "# Guideline\n\nBe kind online.\n"})
    page = client.get("/guidelines/social-media/").content.decode()
    assert '<strong aria-current="page">2.0</strong>' in page and "All 2 versions<" in page
    assert '<a href="?version=1.0&amp;lang=en">1.0</a>' in page
    assert "<ins>Be kind online.</ins>" in page  # what changed since 1.0
    old = client.get("/guidelines/social-media/?version=1.0").content.decode()
    assert "which is no longer current" in old and 'href="?version=1.0&amp;lang=nl"' in old
    dutch = client.get("/guidelines/social-media/?lang=nl").content.decode()
    assert "<ins>Nieuw.</ins>" in dutch and "Be kind online." not in dutch

    publishing.retire_guideline(guideline=guideline, by=hilde, reason="Replaced")
    retired = client.get("/guidelines/social-media/?version=2.0").content.decode()
    assert "This guideline has been retired." in retired
    assert '<strong aria-current="page">2.0</strong>' in retired and "· published" not in retired
