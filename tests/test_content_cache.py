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
