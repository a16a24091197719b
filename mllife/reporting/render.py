"""The report's templates (``templates/``): HTML with autoescaping, Markdown with its own
escaping, both from the same blocks and sentences."""

from __future__ import annotations

import base64
import functools
import re

import jinja2

__all__ = ["markdown_text", "render", "section_html", "section_markdown"]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|])")


def markdown_text(text: object) -> str:
    """Text shown literally in Markdown: inline HTML neutralised, emphasis and link
    characters escaped, one line."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MARKDOWN_SPECIAL.sub(r"\\\1", value)
    return " ".join(value.splitlines())


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mllife.reporting", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,  # a misspelt field fails, not renders empty
        keep_trailing_newline=True,
    )
    env.filters.update(data_url=_data_url, md=markdown_text, md_cell=markdown_text)
    return env


def render(template: str, **values) -> str:
    return _environment().get_template(template).render(**values)


def section_html(section) -> str:
    """One report section's blocks as HTML (what the page shows under its heading)."""
    return render("section.html.j2", section=section)


def section_markdown(section) -> str:
    return render("section.md.j2", section=section)
