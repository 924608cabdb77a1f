"""Deterministic SEO helpers behind the demo toolkit. Pure functions, no network."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

TITLE_MAX = 60
DESCRIPTION_MAX = 160
_WORD = re.compile(r"[A-Za-zÀ-ÿ0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def keyword_density(text: str, keyword: str) -> dict[str, object]:
    tokens = words(text)
    phrase = words(keyword)
    if not phrase:
        raise ValueError("keyword must contain at least one word")
    n = len(phrase)
    hits = sum(1 for i in range(len(tokens) - n + 1) if tokens[i : i + n] == phrase)
    density = round(100.0 * hits * n / len(tokens), 2) if tokens else 0.0
    verdict = "too low" if density < 0.5 else "too high" if density > 3.0 else "good"
    return {
        "keyword": keyword,
        "occurrences": hits,
        "word_count": len(tokens),
        "density_percent": density,
        "verdict": verdict,
    }


def slugify(text: str, max_length: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(count, 1)


def readability(text: str) -> dict[str, object]:
    sentences = max(len([s for s in re.split(r"[.!?]+", text) if s.strip()]), 1)
    tokens = words(text)
    if not tokens:
        raise ValueError("text has no words")
    syllables = sum(_syllables(w) for w in tokens)
    score = round(206.835 - 1.015 * (len(tokens) / sentences) - 84.6 * (syllables / len(tokens)), 1)
    grade = (
        "very easy"
        if score >= 80
        else "easy"
        if score >= 70
        else "plain"
        if score >= 60
        else "fairly difficult"
        if score >= 50
        else "difficult"
    )
    return {
        "flesch_reading_ease": score,
        "grade": grade,
        "sentences": sentences,
        "words": len(tokens),
        "syllables": syllables,
    }


def serp_preview(title: str, description: str, url: str) -> dict[str, object]:
    warnings = []
    if len(title) > TITLE_MAX:
        warnings.append(f"title is {len(title)} characters; Google shows about {TITLE_MAX}")
    if len(description) > DESCRIPTION_MAX:
        warnings.append(f"description is {len(description)} characters; Google shows about {DESCRIPTION_MAX}")
    if len(title) < 20:
        warnings.append("title is short; aim for 30–60 characters")
    shown_title = title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "…"
    shown_desc = (
        description if len(description) <= DESCRIPTION_MAX else description[: DESCRIPTION_MAX - 1].rstrip() + "…"
    )
    return {
        "preview": f"{shown_title}\n{url}\n{shown_desc}",
        "title_length": len(title),
        "description_length": len(description),
        "warnings": warnings,
    }


class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.meta: dict[str, str] = {}
        self.h1 = 0
        self.canonical = ""
        self.images_without_alt = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "meta" and a.get("name"):
            self.meta[a["name"].lower()] = a.get("content", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "link" and a.get("rel", "").lower() == "canonical":
            self.canonical = a.get("href", "")
        elif tag == "img" and not a.get("alt"):
            self.images_without_alt += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def meta_tag_audit(html: str) -> dict[str, object]:
    parser = _MetaParser()
    parser.feed(html)
    issues = []
    if not parser.title.strip():
        issues.append("missing <title>")
    elif len(parser.title) > TITLE_MAX:
        issues.append(f"<title> longer than {TITLE_MAX} characters")
    description = parser.meta.get("description", "")
    if not description:
        issues.append("missing meta description")
    elif len(description) > DESCRIPTION_MAX:
        issues.append(f"meta description longer than {DESCRIPTION_MAX} characters")
    if parser.h1 != 1:
        issues.append(f"expected exactly one <h1>, found {parser.h1}")
    if not parser.canonical:
        issues.append("missing canonical link")
    if "noindex" in parser.meta.get("robots", ""):
        issues.append("page is noindex")
    if parser.images_without_alt:
        issues.append(f"{parser.images_without_alt} image(s) without alt text")
    return {
        "title": parser.title.strip(),
        "description": description,
        "h1_count": parser.h1,
        "canonical": parser.canonical,
        "issues": issues,
        "score": max(0, 100 - 15 * len(issues)),
    }
