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


def _module_map() -> list[str]:
    """The paths the README's map names, an indented line under the folder above it."""
    text = (ROOT / "README.md").read_text().split("## How it works\n\n```\n", 1)[1].split("```", 1)[0]
    paths, folder = [], ""
    for line in text.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not re.fullmatch(r"[\w./-]+(?:/|\.\w+)", name):
            continue  # a description carried on to the next line
        if line.startswith("  "):
            paths.append(folder + name)
        else:
            paths.append(name)
            folder = name if name.endswith("/") else ""
    return paths


def test_the_readme_map_names_every_module_and_only_what_exists():
    listed = _module_map()
    assert [p for p in listed if not (ROOT / p).exists()] == []
    expected = [str(p.relative_to(ROOT)) + ("/" if p.is_dir() else "") for p in sorted((ROOT / "lib").iterdir())
                if p.suffix == ".py" and p.name != "__init__.py" or p.is_dir() and p.name != "__pycache__"]
    for folder in [p for p in listed if p.startswith("lib/") and p.endswith("/")]:
        children = [p for p in listed if p.startswith(folder) and p != folder]
        if children:  # a folder mapped module by module lists every module
            expected += [f"{folder}{c.name}" for c in sorted((ROOT / folder).glob("*.py")) if c.name != "__init__.py"]
    assert sorted(set(expected) - set(listed)) == []
