"""MkDocs hook: docs pages made of README sections, so each text lives in one place.

A page holds its own title and short linking prose; the rest is directives,
on a line of their own::

    <!-- include README.md "## Quickstart" -->
    <!-- include README.md "# asgi-cache" lead -->
    <!-- include benchmarks/README.md level=2 -->

The first takes the section under that heading, down to the next heading of
the same level or higher; ``lead`` takes only the text before the first
subheading; without a heading, the whole file.  ``level=N`` moves the first
heading to level ``N`` and the headings under it along (``level=1``: the
section's heading is the page's title).  Headings are found by their
text, not by markers, so the README needs nothing added, and a section that
is renamed or removed fails the build (``mkdocs build --strict``) instead of
drifting.

Links in the included text are made to work from the page: a link to an
anchor goes to the page that includes that heading, a link to a Markdown
file included whole goes to its page, and a link to any other file of the
repository copies that file into the site.  A README ``##`` section that no
page includes is a warning too, so a new section cannot be left out of the
site unnoticed.
"""

from __future__ import annotations

import logging
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from markdown.extensions.toc import slugify
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.include")

DIRECTIVE = re.compile(r"^<!-- include (?P<args>.+?) -->$", re.MULTILINE)
HEADING = re.compile(r"^(?P<level>#{1,6}) +(?P<text>.+?) *#*$")
LINK = re.compile(r"(?P<open>!?\[[^\]]*\]\()(?P<target>[^)\s]+)(?P<close>\))")
FENCE = re.compile(r"^(```|~~~)")


@dataclass(frozen=True)
class Include:
    source: str  # repository-relative path of the included file
    heading: str | None  # "## Quickstart", or None for the whole file
    lead: bool  # only the text before the first subheading
    level: int | None  # the level the first heading is moved to, the others with it

    @classmethod
    def parse(cls, args: str, page: str) -> Include:
        source, *words = shlex.split(args)
        heading = words.pop(0) if words and words[0].startswith("#") else None
        level = None
        lead = False
        for word in words:
            if word == "lead":
                lead = True
            elif re.fullmatch(r"level=[1-6]", word):
                level = int(word[6:])
            else:
                raise PluginError(f"{page}: bad include directive {args!r}")
        return cls(source, heading, lead, level)


def headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """``(line index, level, text)`` of each heading outside code fences."""
    found = []
    fenced = False
    for index, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((index, len(match["level"]), match["text"]))
    return found


def section(root: Path, include: Include, page: str) -> str:
    """The included text, or a build error naming the page and what is missing."""
    path = root / include.source
    if not path.is_file():
        raise PluginError(f"{page}: {include.source} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    marks = headings(lines)
    first, end, level = 0, len(lines), 1
    if include.heading is not None:
        level = len(include.heading) - len(include.heading.lstrip("#"))
        text = include.heading[level:].strip()
        start = next((i for i, (_, lv, t) in enumerate(marks) if (lv, t) == (level, text)), None)
        if start is None:
            raise PluginError(f"{page}: {include.source} has no heading {include.heading!r}")
        first = marks[start][0]
        for index, lv, _ in marks[start + 1 :]:
            if lv <= level or include.lead:
                end = index
                break
    elif marks:
        level = marks[0][1]
    if include.level is not None and include.level != level:
        shift = include.level - level
        for index, lv, text in marks:
            if first <= index < end:
                lines[index] = "#" * max(1, min(6, lv + shift)) + " " + text
    return "\n".join(lines[first:end])


class Site:
    """What every page includes, found before any page is rendered."""

    def __init__(self, root: Path, docs_dir: Path) -> None:
        self.root = root
        self.docs_dir = docs_dir
        self.pages: dict[str, list[Include]] = {}  # page src_uri -> its includes
        self.anchors: dict[str, str] = {}  # heading slug -> page src_uri
        self.whole: dict[str, str] = {}  # file included whole -> page src_uri
        self.copied: set[str] = set()  # repository files linked to, copied into the site

    def read(self, files: Files) -> None:
        for file in files.documentation_pages():
            text = Path(file.abs_src_path or "").read_text(encoding="utf-8")
            includes = [Include.parse(m["args"], file.src_uri) for m in DIRECTIVE.finditer(text)]
            if includes:
                self.pages[file.src_uri] = includes
            for include in includes:
                body = section(self.root, include, file.src_uri)
                if include.heading is None:
                    self.whole[include.source] = file.src_uri
                for _, _, heading in headings(body.splitlines()):
                    self.anchors.setdefault(slugify(heading, "-"), file.src_uri)
        for include in (i for includes in self.pages.values() for i in includes):
            body = section(self.root, include, "")
            for match in LINK.finditer(body):
                target = self.resolved(include.source, match["target"])
                if target is not None and target not in self.whole:
                    self.copied.add(target)

    def resolved(self, source: str, target: str) -> str | None:
        """The repository path a relative link of ``source`` names (``None``: not a file)."""
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return None
        path = target.split("#", 1)[0]
        return posixpath.normpath(posixpath.join(posixpath.dirname(source), path))

    def missing_sections(self) -> list[str]:
        """README ``##`` headings that no page includes."""
        lines = (self.root / "README.md").read_text(encoding="utf-8").splitlines()
        included = {
            include.heading
            for includes in self.pages.values()
            for include in includes
            if include.source == "README.md"
        }
        return [
            f"## {text}"
            for _, level, text in headings(lines)
            if level == 2 and f"## {text}" not in included
        ]

    def expand(self, markdown: str, page: str) -> str:
        def include(match: re.Match[str]) -> str:
            wanted = Include.parse(match["args"], page)
            return self.relinked(section(self.root, wanted, page), wanted.source, page)

        return DIRECTIVE.sub(include, markdown)

    def relinked(self, text: str, source: str, page: str) -> str:
        """``text`` of ``source`` with its links made to work from ``page``."""
        here = posixpath.dirname(page) or "."

        def link(match: re.Match[str]) -> str:
            target = match["target"]
            if target.startswith("#"):
                owner = self.anchors.get(target[1:])
                if owner is None:
                    raise PluginError(f"{page}: {source} links to {target}, on no page")
                new = target if owner == page else posixpath.relpath(owner, here) + target
            else:
                path = self.resolved(source, target)
                if path is None:
                    return match.group(0)
                fragment = target[len(target.split("#", 1)[0]) :]
                new = posixpath.relpath(self.whole.get(path, path), here) + fragment
            return f"{match['open']}{new}{match['close']}"

        return LINK.sub(link, text)


_site: Site | None = None


def on_files(files: Files, config: MkDocsConfig) -> Files:
    global _site
    root = Path(config.config_file_path).parent
    _site = Site(root, Path(config.docs_dir))
    _site.read(files)
    for missing in _site.missing_sections():
        log.warning("README section %r is on no docs page: include it in one", missing)
    for path in sorted(_site.copied):
        if not (root / path).is_file():
            raise PluginError(f"the docs link to {path}, which does not exist")
        if files.get_file_from_path(path) is None:
            files.append(File(path, str(root), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    assert _site is not None
    return _site.expand(markdown, page.file.src_uri)
