"""The HTML pages the CLI writes (`history --format html`, `report`): Jinja2 templates in
`cli/templates` sharing one base page, rendered with autoescaping on (caller names, function
names and reasons come from log records anyone can shape)."""

from __future__ import annotations

from functools import cache

import jinja2

__all__ = ["template"]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cli", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template(name: str) -> jinja2.Template:
    return _environment().get_template(name)
