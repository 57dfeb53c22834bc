"""Synthetic, deterministic source data for the pharmacy journey, with known defects."""

from mesh_platform.seed.defects import DEFECT_RATES
from mesh_platform.seed.generate import AS_OF, VACCINE_CODES, seed

__all__ = ["AS_OF", "DEFECT_RATES", "VACCINE_CODES", "seed"]
