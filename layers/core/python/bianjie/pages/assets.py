"""The built pages (web/pages/dist) in PagesWebBucket, served by PagesPageFunction and PagesAssetFunction:
the kit's publishing and serving of built pages (``bianjie.kit.webassets``)."""

from bianjie.kit.webassets import ASSETS, HTML, NAME_RE, PAGE_RE, TYPES, asset, content_type, page_html, publish

__all__ = ["ASSETS", "HTML", "NAME_RE", "PAGE_RE", "TYPES", "asset", "content_type", "page_html", "publish"]
