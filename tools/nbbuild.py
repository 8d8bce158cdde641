"""Build a notebook from a plain-text cell script (maintainer tool).

Cells are separated by lines ``# %%`` (code) or ``# %% [markdown]``; a code cell whose
first line is ``# parameters`` gets the papermill ``parameters`` tag. Usage::

    python tools/nbbuild.py SOURCE.py OUT.ipynb
"""

from __future__ import annotations

import hashlib
import sys

import nbformat


def build(src: str) -> nbformat.NotebookNode:
    """Parse the cell script ``src`` into a notebook node."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    chunks: list[tuple[str, list[str]]] = []
    for line in src.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            chunks.append((kind, []))
        elif chunks:
            chunks[-1][1].append(line)
    for kind, lines in chunks:
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in
                             text.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if text.startswith("# parameters"):
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    # ids from the cell's kind and text (not random), so a rebuild changes the ids of the
    # edited cells only and the notebook diff shows the edit
    seen: dict[str, int] = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:10]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
    return nb


if __name__ == "__main__":
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path, encoding="utf-8") as f:
        nbformat.write(build(f.read()), out_path)
