"""The demo article, parsed from the page text as a reader saw it."""

from __future__ import annotations

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
    related = []
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


@cache
def articles() -> dict[str, Article]:
    folder = resources.files("article_site").joinpath("content")
    text = folder.joinpath("nato-china-russia.txt").read_text(encoding="utf-8")
    article = parse(text, "nato-expresses-deep-concern-over-china-russia-alliance")
    return {article.slug: article}
