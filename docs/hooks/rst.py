"""Griffe extension: the reStructuredText of the package's docstrings, as Markdown.

The docstrings are written for ``help()`` and Sphinx-style fields
(``:param x:``), which mkdocstrings reads with ``docstring_style: sphinx``; the
text around the fields is rendered as Markdown.  This turns the few
reStructuredText constructs the docstrings use into their Markdown
equivalents, so the reference reads as the source does:

* roles (``:class:`~asgi_cache.Cache```) become code spans (``Cache``);
* a paragraph ending in ``::`` ends in ``:``, its indented block staying code;
* simple tables (columns under rows of ``=``) become pipe tables.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")
RULE = re.compile(r"^ *=+( +=+)+ *$")


def role(match: re.Match[str]) -> str:
    target = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"`{target}`"


def cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """A table row's cells, cut at the column spans of its rule (the last one runs on)."""
    found = [line[start:end].strip() for start, end in spans[:-1]]
    found.append(line[spans[-1][0] :].strip())
    return [cell.replace("|", "\\|") for cell in found]


def tables(lines: list[str]) -> list[str]:
    """``lines`` with each simple table (a rule, a header, a rule, rows, a rule) as a pipe table."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        rules = [i for i in range(index, min(len(lines), index + 3)) if RULE.match(lines[i])]
        if RULE.match(line) and len(rules) >= 2 and rules[1] == index + 2:
            spans = [m.span() for m in re.finditer(r"=+", line)]
            end = next((i for i in range(index + 3, len(lines)) if RULE.match(lines[i])), None)
            if end is not None:
                header = cells(lines[index + 1], spans)
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                for row in lines[index + 3 : end]:
                    if row.strip():
                        out.append("| " + " | ".join(cells(row, spans)) + " |")
                index = end + 1
                continue
        out.append(line)
        index += 1
    return out


def markdown(text: str) -> str:
    """``text`` (a docstring) with its reStructuredText constructs in Markdown."""
    text = ROLE.sub(role, text)
    lines = []
    for line in tables(text.splitlines()):
        if line.rstrip().endswith("::"):
            stripped = line.rstrip()[:-2].rstrip()
            line = stripped + ":" if stripped else ""
        lines.append(line)
    return "\n".join(lines)


class RestructuredText(griffe.Extension):
    """Rewrites every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
