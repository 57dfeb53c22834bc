"""The files of a landing folder that can be ingested, as the sensor and the ingesting asset list them.

A landing folder is written by source systems, and anything can appear in it: a directory or a pipe
named like a file, a link, a name that is not UTF-8, a file removed between two looks. Only regular
files (not links) with a UTF-8 name ending in the folder's suffix are ingested; every other entry
with that suffix is returned as skipped, with why, so that the asset can say so (a quarantine row)
while the other files go on being ingested. Each file carries its size and modification time as
listed: what a run records as ingested is what it listed, so a file that grows or is rewritten
after the listing (even at the same size) is ingested again by the next run.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LandingFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def signature(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class LandingListing:
    files: list[LandingFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # entry name, shown printable -> why it is not read


def shown_name(name: str) -> str:
    """A file name as text that can be printed and stored: undecodable bytes and control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def landing_files(folder: Path, suffix: str = ".jsonl") -> LandingListing:
    """The regular files named `*<suffix>` directly in `folder`, sorted by name, and the other such entries."""
    listing = LandingListing()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    except (FileNotFoundError, NotADirectoryError):
        return listing
    for entry in entries:
        if not entry.name.endswith(suffix):
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            listing.skipped[shown_name(entry.name)] = "invalid_file_name"
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since it was listed
            continue
        if not stat.S_ISREG(info.st_mode):
            listing.skipped[shown_name(entry.name)] = "not_a_file"
            continue
        listing.files.append(LandingFile(Path(entry.path), info.st_size, info.st_mtime_ns))
    return listing


def landing_signatures(folder: Path) -> dict[str, str]:
    """Each file `landing_files` would ingest, by name: its size and mtime (what the landing sensor watches)."""
    return {f.path.name: f.signature for f in landing_files(folder).files}
