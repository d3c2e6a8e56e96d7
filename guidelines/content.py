"""Guideline text: Markdown to sanitised HTML, a readable diff between two versions, and the texts
of released versions kept in each process.

A released version's texts never change (database triggers freeze them at publication; the HTML is
rendered then), so once read they are kept in the "content" cache (settings.CACHES: local memory,
per process, nothing to invalidate), and so is the diff between two of them.
"""

import difflib
import re

import markdown
import nh3
from django.core.cache import caches
from django.utils.html import escape

from .models import VersionText

CACHE = "content"

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s",
    "blockquote", "code", "pre", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    "abbr", "sup", "sub", "dl", "dt", "dd",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(source):
    """Markdown to HTML that can be shown as-is: no scripts, no styles, no remote images."""
    html = markdown.markdown(source, extensions=["tables", "sane_lists"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


HEADING = re.compile(r"^#{1,6}\s+")
LIST_ITEM = re.compile(r"^\s*([-*+]|\d+\.)\s+")


def _blocks(source):
    """Markdown split into readable blocks: headings, list items and paragraphs, markup removed.

    Returns (kind, text) pairs; kind is "heading" or "text".
    """
    blocks, paragraph = [], []

    def flush():
        if paragraph:
            blocks.append(("text", " ".join(paragraph)))
            paragraph.clear()

    for line in source.splitlines():
        stripped = line.strip()
        if not stripped:
            flush()
        elif HEADING.match(stripped):
            flush()
            blocks.append(("heading", HEADING.sub("", stripped)))
        elif LIST_ITEM.match(line):
            flush()
            marker = LIST_ITEM.match(line).group(1)
            bullet = marker if marker[0].isdigit() else "•"
            paragraph.append(f"{bullet} {LIST_ITEM.sub('', line).strip()}")
            flush()
        elif line.startswith(("  ", "\t")) and blocks and not paragraph:
            kind, text = blocks.pop()
            blocks.append((kind, f"{text} {stripped}"))
        else:
            paragraph.append(stripped)
    flush()
    return [(kind, re.sub(r"(\*\*|__|`)", "", text)) for kind, text in blocks]


def _word_diff(old, new):
    old_words, new_words = old.split(), new.split()
    parts = []
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(escape(" ".join(old_words[a1:a2])))
            continue
        if a2 > a1:
            parts.append(f"<del>{escape(' '.join(old_words[a1:a2]))}</del>")
        if b2 > b1:
            parts.append(f"<ins>{escape(' '.join(new_words[b1:b2]))}</ins>")
    return " ".join(parts)


def diff_blocks(old_source, new_source):
    """What changed between two Markdown texts, as a list of {kind, section, html} dicts.

    kind is "added", "removed" or "changed"; section is the heading the block falls under;
    html is escaped text with <ins>/<del> around changed words. Unchanged blocks are left out.
    """
    old_blocks, new_blocks = _blocks(old_source), _blocks(new_source)
    old_texts, new_texts = [text for _, text in old_blocks], [text for _, text in new_blocks]

    def section_of(blocks, index):
        return next((text for kind, text in reversed(blocks[: index + 1]) if kind == "heading"), "")

    result = []

    def add(kind, html, blocks, index):
        result.append({"kind": kind, "html": html, "section": section_of(blocks, index)})

    matcher = difflib.SequenceMatcher(a=old_texts, b=new_texts, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(a2 - a1, b2 - b1)
        for offset in range(paired):
            add("changed", _word_diff(old_texts[a1 + offset], new_texts[b1 + offset]), new_blocks, b1 + offset)
        for a in range(a1 + paired, a2):
            add("removed", f"<del>{escape(old_texts[a])}</del>", old_blocks, a)
        for b in range(b1 + paired, b2):
            add("added", f"<ins>{escape(new_texts[b])}</ins>", new_blocks, b)
    return result


def diff_between(old_text, new_text):
    """diff_blocks of two released language variants, computed once per process.

    The key names both variants and their content hashes, so it can only ever answer for these two
    texts."""
    if not (old_text.content_hash and new_text.content_hash):  # not published: may still change
        return diff_blocks(old_text.body, new_text.body)
    key = f"guidelines:diff:{old_text.pk}:{old_text.content_hash}:{new_text.pk}:{new_text.content_hash}"
    blocks = caches[CACHE].get(key)
    if blocks is None:
        blocks = diff_blocks(old_text.body, new_text.body)
        caches[CACHE].set(key, blocks, timeout=None)
    return blocks


def _texts_key(version):
    # The publication time as well as the id: an id alone could name another version in a database
    # created anew (a test run, a restored development database) while this process lives on.
    return f"guidelines:texts:{version.pk}:{version.published_at.timestamp():.6f}"


def released_texts(versions):
    """{version pk: {language: VersionText}} for released versions (published at some point), from
    the cache or else in one query. Versions that were never published are read every time."""
    versions = [version for version in versions if version is not None]
    cache = caches[CACHE]
    keys = {version.pk: _texts_key(version) for version in versions if version.published_at is not None}
    found = cache.get_many(keys.values()) if keys else {}
    texts = {version.pk: found[keys[version.pk]] for version in versions if keys.get(version.pk) in found}
    missing = [version.pk for version in versions if version.pk not in texts]
    if missing:
        loaded = {pk: {} for pk in missing}
        for text in VersionText.objects.filter(version__in=missing).order_by("language"):
            loaded[text.version_id][text.language] = text
        texts.update(loaded)
        cache.set_many({keys[pk]: loaded[pk] for pk in missing if pk in keys}, timeout=None)
    return texts
