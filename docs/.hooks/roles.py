"""MkDocs hook: render the Sphinx roles of ssdkd's docstrings as inline code.

The docstrings cross-reference with ``:class:`Name``` and ``:func:`~package.name```
(readable in ``help()`` and an editor); the rendered reference shows ``Name`` and
``name`` as code instead of the role's markup (a leading ``~`` keeps the last part only,
as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    name = match.group(2)
    return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """Replace each role and its ``<code>`` span of a rendered page by the name as code."""
    return _ROLE.sub(_code, html)
