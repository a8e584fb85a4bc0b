"""The README and docs/ as a reader uses them: every relative link and anchor resolves, and every `harness ...`
command in their code blocks parses with the command line's own parser."""
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO

from harness.cli.parser import build_parser
from harness.errors import UserError

PAGES = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercased, punctuation dropped but hyphens and spaces, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        base = slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, broken


def commands(page: Path) -> list[str]:
    """`harness ...` lines of the page's code blocks (fenced or indented), continuation lines joined, comments
    and leading VAR=value assignments dropped, $VAR set by an earlier line of the page's blocks expanded."""
    out, in_fence, pending, variables = [], False, "", {}
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if not (in_fence or line.startswith("    ")):
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        for name, value in variables.items():
            text = text.replace(f"${name}", value).replace(f'"${{{name}}}"', value)
        words = shlex.split(text, comments=True)
        if len(words) == 1 and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, value = words[0].split("=", 1)
            variables[name] = value
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words[:1] == ["harness"]:
            out.append(words)
    return out


def test_the_docs_show_commands():
    assert sum(len(commands(p)) for p in PAGES) > 40  # the check below reads them


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_harness_command_in_a_code_block_parses(page):
    parser = build_parser()
    wrong = []
    for words in commands(page):
        try:
            parser.parse_args(words[1:])
        except (UserError, SystemExit) as exc:
            wrong.append(f"{shlex.join(words)}: {exc}")
    assert not wrong, wrong
