"""What the code cites is in the repository: every `docs/<page>.md §n` names a section of that page."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"(?<![\w/])(?:docs/)?([\w-]+\.md) §([\d.]+)(?:[,–-]\s*§([\d.]+))?")


def _sources() -> list[Path]:
    return [p for folder in ("lib", "pages", "tests", "benchmarks") for p in (ROOT / folder).rglob("*.py")] + [
        ROOT / "app.py", ROOT / "README.md"]


def test_every_cited_section_is_in_the_repository():
    missing = []
    for path in _sources():
        for match in CITED.finditer(path.read_text()):
            page = ROOT / "docs" / match[1]
            text = page.read_text() if page.is_file() else ""
            headings = {h.rstrip(".") for h in re.findall(r"^#+ ([\d.]+) ", text, re.M)}
            missing += [f"{path.relative_to(ROOT)}: {match[0]}" for section in match.groups()[1:]
                        if section and section.rstrip(".") not in headings]
    assert missing == []
