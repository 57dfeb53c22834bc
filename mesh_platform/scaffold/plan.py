"""A set of file writes decided in memory, applied together, undone together."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FilePlan:
    root: Path
    files: dict[Path, str] = field(default_factory=dict)  # absolute path -> new content

    def write(self, path: Path, text: str) -> None:
        self.files[path] = text

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def created(self) -> list[str]:
        return sorted(self.rel(p) for p in self.files if not p.exists())

    def changed(self) -> list[str]:
        return sorted(self.rel(p) for p in self.files if p.exists())

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Write every file; if the block raises, put everything back as it was and re-raise."""
        originals = {p: p.read_text() if p.exists() else None for p in self.files}
        missing = {d for p in self.files for d in _missing_parents(p)}
        new_dirs = sorted(d for d in missing if d.parent not in missing)  # the top-most folders it creates
        try:
            for path, text in self.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            yield
        except BaseException:
            self._restore(originals, new_dirs)
            raise

    def _restore(self, originals: dict[Path, str | None], new_dirs: list[Path]) -> None:
        for path, text in originals.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)
        for folder in new_dirs:
            shutil.rmtree(folder, ignore_errors=True)  # only folders this plan created (with what tools put there)


def _missing_parents(path: Path) -> list[Path]:
    missing, parent = [], path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return missing
