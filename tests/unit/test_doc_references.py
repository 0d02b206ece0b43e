"""Every `§` citation in the repository resolves to a heading of docs/, and nothing points outside.

`domain.md §7.4` means docs/domain.md's heading `7.4`; a bare `§7.4` means docs/domain.md, except
inside a docs/ file, where it means that file. Ranges (`§7.7–7.9`) must resolve at both ends.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
CITED = ("domain", "api", "architecture", "operations", "product", "consent", "compliance")
SUFFIXES = {".py", ".md", ".tf", ".yaml", ".yml", ".json", ".toml", ".ini", ".txt", ".rules", ""}
CITATION = re.compile(
    r"(?:(?P<doc>[A-Za-z][\w-]*)\.md\W{0,3}\s?)?§\s?(?P<start>\d+(?:\.\d+)?)"
    r"(?:\s?[–-]\s?§?(?P<end>\d+(?:\.\d+)?))?"
)
OUTSIDE = re.compile(r"spec/(?:domain|api)\.md|local-gcp\.md|design\.md")
RELATIVE = re.compile(r"(?:\.\./)+shared\b")  # the brief's ../shared, or the repo's own shared/
HEADING = re.compile(r"^#{2,4} (?P<number>\d+(?:\.\d+)?)\.? ", re.MULTILINE)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    paths = [ROOT / name for name in listed]
    return [p for p in paths if p.is_file() and p.suffix in SUFFIXES and p != Path(__file__)]


def headings(doc: str) -> set[str]:
    return {m["number"] for m in HEADING.finditer((DOCS / f"{doc}.md").read_text())}


def citations() -> list[tuple[str, str, str]]:
    """(where, document, section) for every citation."""
    found = []
    for path in tracked_files():
        text = path.read_text(errors="replace")
        default = path.stem if path.parent == DOCS else "domain"
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            doc = match["doc"] or default
            found += [(where, doc, match["start"])]
            if match["end"]:
                end = match["end"]
                if "." not in end and "." in match["start"]:  # §7.7–9 means 7.7 to 7.9
                    end = match["start"].rsplit(".", 1)[0] + "." + end
                found += [(where, doc, end)]
    return found


def test_docs_exist_for_every_cited_document():
    assert sorted(p.stem for p in DOCS.glob("*.md") if p.stem != "README") == sorted(CITED)


def test_every_citation_resolves_to_a_heading_in_docs():
    known = {doc: headings(doc) for doc in CITED}
    unresolved = [
        f"{where}: {doc}.md §{number}"
        for where, doc, number in citations()
        if number not in known.get(doc, set())
    ]
    assert unresolved == []


def test_the_scan_finds_the_citations_it_checks():
    # A scanner that matched nothing would make the test above pass vacuously.
    found = citations()
    assert len(found) > 200
    assert {doc for _, doc, _ in found} >= {"domain", "api", "architecture", "operations"}


def test_nothing_refers_to_a_path_outside_the_repository():
    outside = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in tracked_files()
        for match in OUTSIDE.findall(path.read_text(errors="replace"))
    ]
    outside += [
        f"{path.relative_to(ROOT)}: {match}"
        for path in tracked_files()
        for match in leaving(path, path.read_text(errors="replace"))
    ]
    assert outside == []


def leaving(path: Path, text: str) -> list[str]:
    """Relative `shared` paths in a file that resolve outside the repository."""
    return [
        match
        for match in RELATIVE.findall(text)
        if not (path.parent / match).resolve().is_relative_to(ROOT)
    ]


def test_a_relative_path_counts_as_outside_only_when_it_leaves_the_repository():
    assert leaving(ROOT / "README.md", "see ../shared/spec/x.txt") == ["../shared"]
    assert leaving(ROOT / "clients" / "typescript" / "package.json", "../../shared/src") == []
