"""Keep the README's generated parts true: `python -m devtools.readme` (or `make docs`).

The lineage diagram is rendered by `mesh_platform.lineage.readme_diagram`, which `mesh new-domain`
and `mesh new-product` also use to keep it current."""

from __future__ import annotations

import sys

from mesh_platform.lineage.readme_diagram import update
from mesh_platform.project.locations import MeshProject


def main() -> None:
    changed = update(MeshProject.discover().root)
    sys.stderr.write("README.md lineage diagram " + ("updated\n" if changed else "already current\n"))


if __name__ == "__main__":
    main()
