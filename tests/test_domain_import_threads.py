"""A domain's code is imported while other threads import modules too (`mesh run` loads the next
domains' jobs in the background while its main thread works): the import never trips over
`sys.modules` changing under it, and each import is the code on disk."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType

from mesh_platform.defs.domain_definitions import _asset_fns, _import_domain_code
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh

ROOT = Path(__file__).resolve().parents[1]


def test_domain_code_imports_while_another_thread_changes_sys_modules() -> None:
    mesh = Mesh.load(MeshProject.discover(ROOT))
    stop = threading.Event()

    def churn() -> None:  # what another thread's imports do to sys.modules, as fast as it can
        i = 0
        while not stop.is_set():
            name = f"_mesh_test_churn_{i % 64}"
            sys.modules[name] = ModuleType(name)
            sys.modules.pop(f"_mesh_test_churn_{(i + 32) % 64}", None)
            i += 1

    churner = threading.Thread(target=churn, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can: the race shows at once
    churner.start()
    try:
        for _ in range(40):
            for domain in ("pharmacy", "scheduling"):
                names = {fn.name for fn in _asset_fns(_import_domain_code(mesh, domain))}
                assert names, f"{domain}'s asset functions are found"
    finally:
        stop.set()
        churner.join(5)
        sys.setswitchinterval(interval)
        for name in [m for m in sys.modules.copy() if m.startswith("_mesh_test_churn_")]:
            del sys.modules[name]
