"""The files of a landing folder that can be ingested, as the sensor and the ingesting asset list them.

A landing folder is written by source systems, and anything can appear in it: a directory or a pipe
named like a file, a link, a name that is not UTF-8, a file removed between two looks, a batch named
`.json` or `.JSONL`. Only regular files (not links) with a UTF-8 name ending in the folder's suffix
are ingested; every other entry with that suffix, and every other regular file, is returned as
skipped, with why, so that the asset can say so (a quarantine row) while the other files go on being
ingested. Left aside without a word: subfolders and other non-files without the suffix (an
`archive/`), and what source systems write beside batches: a file still being written under
another name before they rename it, a marker, a hidden name (`not_a_batch`). Each file carries
its size and modification time as listed: what a run records as ingested is what it listed, so a
file that grows or is rewritten after the listing (even at the same size) is ingested again by the
next run.
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
    skipped: dict[str, str] = field(default_factory=dict)  # entry name, shown printable -> why (`WHY_SKIPPED`)


def shown_name(name: str) -> str:
    """A file name as text that can be printed and stored: undecodable bytes and control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


WHY_SKIPPED = {
    "not_a_file": "it is not a regular file",
    "invalid_file_name": "its name is not UTF-8",
    "wrong_file_suffix": "landing files are named *.jsonl",
}
# a file being written under one of these and then renamed, or a marker beside a batch
NOT_BATCHES = (
    *(".tmp", ".part", ".partial", ".filepart", "._copying_", ".crdownload", ".download", ".inprogress"),
    *(".uploading", ".lock", ".done", ".ok", ".ready", "~"),
)


def not_a_batch(name: str) -> bool:
    """A name source systems use for what is not a batch yet (or not one at all): hidden (`.` or
    `_`, as Hadoop and Spark hide `_SUCCESS`), or a file in transfer or a marker (`NOT_BATCHES`)."""
    return name.startswith((".", "_")) or name.lower().endswith(NOT_BATCHES)


def landing_files(folder: Path, suffix: str = ".jsonl") -> LandingListing:
    """The regular files named `*<suffix>` directly in `folder`, sorted by name, and the entries
    skipped, with why."""
    listing = LandingListing()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    except (FileNotFoundError, NotADirectoryError):
        return listing
    for entry in entries:
        if not entry.name.endswith(suffix):
            if not not_a_batch(entry.name) and entry.is_file(follow_symlinks=False):
                listing.skipped[shown_name(entry.name)] = "wrong_file_suffix"
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
