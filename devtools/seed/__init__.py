"""Synthetic, deterministic source data for the pharmacy journey, with known defects (`mesh seed`).

Must not import: `cli`.
"""

from devtools.seed.defects import DEFECT_RATES
from devtools.seed.generate import AS_OF, seed

__all__ = ["AS_OF", "DEFECT_RATES", "seed"]
