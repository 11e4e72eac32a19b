"""The demo article, parsed from the page text as a reader saw it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

FREE_PARAGRAPHS = 2


@dataclass(frozen=True)
class Related:
    title: str
    summary: str


@dataclass(frozen=True)
class Article:
    slug: str
    headline: str
    date: str
    section: str
    related: tuple[Related, ...]
    paragraphs: tuple[str, ...]
    promises: tuple[str, ...]
    access_level: str = "premium"

    @property
    def teaser(self) -> tuple[str, ...]:
        return self.paragraphs[:FREE_PARAGRAPHS]

    @property
    def premium(self) -> tuple[str, ...]:
        return self.paragraphs[FREE_PARAGRAPHS:]


def parse(text: str, slug: str) -> Article:
    lines = [line.strip() for line in text.splitlines()]
    date = next(
        line
        for line in lines
        if line.count(",") == 2
        and any(
            day in line
            for day in (
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            )
        )
    )
    crumb = next(line for line in lines if line.startswith("HomeNews"))
    headline = crumb.removeprefix("HomeNews")
    start = lines.index("Related stories") + 1
    blocks = [line for line in lines[start:] if line]
    related: list[Related] = []
    while len(related) < 2 and blocks[1].endswith("..."):
        related.append(Related(blocks[0], blocks[1]))
        blocks = blocks[2:]
    paragraphs, promises = [], []
    for block in blocks:
        if block == "- Advertisement -" or block == "Latest stories":
            continue
        if block.startswith("- "):
            promises.append(block[2:])
        else:
            paragraphs.append(block)
    return Article(slug, headline, date, "News", tuple(related), tuple(paragraphs), tuple(promises))


#: Who may read an article's full text: anyone; a reader within the monthly meter (or a
#: subscriber); any signed-in reader; a reader with ``premium_content``.
LEVELS = ("free", "metered", "registered", "premium")


@cache
def articles() -> dict[str, Article]:
    """Every article, newest first: the seed article (premium) and the demo's short texts."""
    folder = resources.files("article_site").joinpath("content")
    text = folder.joinpath("nato-china-russia.txt").read_text(encoding="utf-8")
    seed = parse(text, "nato-expresses-deep-concern-over-china-russia-alliance")
    demo = json.loads(folder.joinpath("demo-articles.json").read_text(encoding="utf-8"))
    found = {seed.slug: seed}
    for item in demo:
        if item["level"] not in LEVELS:
            raise ValueError(f"{item['slug']}: unknown level {item['level']!r}")
        found[item["slug"]] = Article(
            slug=item["slug"],
            headline=item["headline"],
            date=item["date"],
            section=item["section"],
            related=(),
            paragraphs=tuple(item["paragraphs"]),
            promises=seed.promises,
            access_level=item["level"],
        )
    return found
