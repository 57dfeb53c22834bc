"""Synthetic, deterministic source data for the pharmacy journey, with known defects."""

from devtools.seed.defects import DEFECT_RATES
from devtools.seed.generate import AS_OF, VACCINE_CODES, seed

__all__ = ["AS_OF", "DEFECT_RATES", "VACCINE_CODES", "seed"]
