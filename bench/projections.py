"""What the governed projections cost: every consumer's read of every product it consumes, made by
the platform from the published version (masked where the consumer may not read pii), first on an
empty cache (what a run pays after a new version or a policy change) and then again (what every
later read of the same version and policy pays: nothing but a check that the file is intact)."""

from __future__ import annotations

import shutil
import time
from typing import Any

from mesh_platform.governance.projection import project
from mesh_platform.governance.read import authorize
from mesh_platform.project.mesh import Mesh


def measure(mesh: Mesh) -> dict[str, Any]:
    home = mesh.project.home
    key = home.masking_key()
    grants = [authorize(mesh, ref, domain) for domain, d in sorted(mesh.descriptors.items()) for ref in d.consumes]
    shutil.rmtree(home.governed, ignore_errors=True)
    started = time.perf_counter()
    paths = [project(home, grant, key) for grant in grants]
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for grant in grants:
        project(home, grant, key)
    cached = time.perf_counter() - started
    return {
        "reads": len(grants),
        "masked_reads": sum(1 for g in grants if g.masked),
        "rows": sum(g.published.rows for g in grants),
        "mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1),
        "cold_s": round(cold, 2),
        "cached_s": round(cached, 3),
    }
