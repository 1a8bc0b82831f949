"""Great Expectations' own Data Docs page views, with their Jinja templates compiled once a
process.

GX makes a new Jinja environment for each page view of each build (four a build), and each
compiles its templates again: about a fifth of a small night's Data Docs build (0.2 s of
CPU). These views are GX's own, given a cache of the compiled templates that lives as long
as the process (the GX worker serves many runs). Jinja keys a compiled template by its name
and a checksum of its source, so the pages are those GX's own views render.
The site's configuration (data_docs.py) names these views.
"""

from __future__ import annotations

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class CompiledTemplates(BytecodeCache):
    """Compiled templates in memory, by Jinja's key (template name and source checksum)."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()

    def __len__(self) -> int:
        return len(self._compiled)


COMPILED = CompiledTemplates()


class PageView(DefaultJinjaPageView):
    # GX passes the site's folders by the names the signature gives (the site's custom styles)
    def __init__(
        self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = COMPILED


class IndexPageView(PageView, DefaultJinjaIndexPageView):
    """The index page: PageView's templates, GX's index template (DefaultJinjaIndexPageView
    comes before DefaultJinjaPageView in its order)."""
