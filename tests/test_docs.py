"""The README stays a user's guide of at most 10 KB, and every repository file it or a docs/
page names in backquotes exists (documentation cites only files of this repository)."""
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITED = re.compile(r"`((?:docs|scenarios|harness|bench|tests|mutants)/[A-Za-z0-9_./-]+"
                   r"\.(?:md|py|c|h|json))`")


def _read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        return handle.read()


def test_the_readme_is_at_most_10_kb():
    assert os.path.getsize(os.path.join(REPO, "README.md")) <= 10 * 1024


def test_every_file_the_docs_cite_exists():
    names = sorted(os.listdir(os.path.join(REPO, "docs")))
    pages = ["README.md"] + [f"docs/{name}" for name in names if name.endswith(".md")]
    missing = sorted({(page, path) for page in pages for path in CITED.findall(_read(page))
                      if not os.path.exists(os.path.join(REPO, path))})
    assert not missing, missing
