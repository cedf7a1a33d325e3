"""The documentation cannot rot: the MkDocs site builds in strict mode (every link, anchor and
page in place, every API entry found in the code), README.md stays a short guide whose links
resolve, its Python example runs, its models table is the docs' one, and no page dates itself
with words like "today"."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKDOWN = sorted(p for p in ROOT.rglob("*.md")  # every Markdown file but those of tools and runs
                  if not any(part.startswith(".") or part in ("work_dirs", "site")
                             for part in p.relative_to(ROOT).parts))
DATED = re.compile(r"\b(today|yesterday|this session|the last session|last session)\b", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_site_builds_strictly(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_readme_is_a_short_guide():
    assert len(README.read_text().splitlines()) <= 250


def anchors(page: Path) -> set[str]:
    """The ids of a Markdown page's headings, as MkDocs' toc makes them (or ``{#id}``)."""
    ids = set()
    for line in page.read_text().splitlines():
        if heading := re.match(r"#+ (.*?)(?: \{#([\w-]+)\})?$", line):
            ids.add(heading[2] or slugify(heading[1].replace("`", ""), "-"))
    return ids


def test_readme_links_resolve():
    links = LINK.findall(README.read_text())
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README.md links to {link}: no such file"
        if anchor:
            assert anchor in anchors(target), f"README.md links to {link}: no such heading"


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_text_dates_itself(page):
    found = [f"{page.relative_to(ROOT)}:{i}: {line.strip()}" for i, line in
             enumerate(page.read_text().splitlines(), 1) if DATED.search(line)]
    assert not found, "say the date, not 'today':\n" + "\n".join(found)


def test_readme_models_table_is_the_docs_one():
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    assert rows
    assert set(rows) <= set((ROOT / "docs" / "models.md").read_text().splitlines())


def test_the_readme_python_example_runs(synth_small, tmp_path):
    """The README's Python block, run as a user would from the repository root after
    ``actionrec data synth work_dirs/demo/synth`` (here: the small synthetic set)."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[1]
    work = tmp_path / "repo"
    (work / "actionrec" / "configs").mkdir(parents=True)
    shutil.copytree(ROOT / "actionrec" / "configs" / "demo", work / "actionrec" / "configs" / "demo")
    (work / "work_dirs" / "demo").mkdir(parents=True)
    (work / "work_dirs" / "demo" / "synth").symlink_to(synth_small)
    script = tmp_path / "example.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "move_right/0000.mp4 [(" in run.stdout
    assert (work / "work_dirs" / "demo" / "tsn_r18" / "best.safetensors").is_file()


def layout() -> dict[str, set[str]]:
    """The folders of docs/architecture.md's layout block, each with the ``.py`` files its lines
    name: ``actionrec/engine`` from ``  engine/  train.py, ...``, the package's own files from
    lines that start with a file, other top folders from lines at the margin."""
    block = (ROOT / "docs" / "architecture.md").read_text().split("```")[1]
    folders, folder = {}, "actionrec"
    for line in block.splitlines():
        if top := re.match(r"([\w.-]+)/\s", line):
            folder = top[1]
        elif sub := re.match(r"  (\w+)/\s", line):
            folder = f"actionrec/{sub[1]}"
        elif re.match(r"  \w+\.py\s", line):
            folder = "actionrec"
        folders.setdefault(folder, set()).update(re.findall(r"[\w/]+\.py\b", line))
    return folders


def test_the_layout_names_what_exists():
    folders = layout()
    named = [f"{folder}/{name}" for folder, names in folders.items() for name in names]
    assert len(named) > 40
    assert [n for n in named if not (ROOT / n).is_file()] == [], "docs/architecture.md names these"
    packages = {f"actionrec/{p.parent.name}" for p in (ROOT / "actionrec").glob("*/__init__.py")}
    assert packages - folders.keys() == set(), "docs/architecture.md's layout lacks these packages"
