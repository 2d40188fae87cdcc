"""Article text, title and date from a detail page, with trafilatura (boilerplate removal: navigation,
sidebars, footers, view counters) and htmldate (the date from meta tags, structured data or the text),
as the research measured (17 ms a page once warm). Imported only by the aggregator."""

from __future__ import annotations

from bianjie.content.aggregate import Extracted


def extract(html: str, url: str) -> Extracted | None:
    import trafilatura
    from htmldate import find_date

    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_precision=True)
    if document is None:
        return None
    text = (getattr(document, "text", None) or "").strip()
    title = (getattr(document, "title", None) or "").strip()
    if not text or not title:
        return None
    date = getattr(document, "date", None) or find_date(html, extensive_search=False)
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    return Extracted(title=title, text="\n\n".join(paragraphs), date=date)
