"""Reference data the mesh's domains share, defined once: code lists a domain validates its sources
against. Domain code imports it like the rest of the SDK (`from mesh_platform.sdk.reference_data
import VACCINE_CODES`); the seeder (`devtools.seed`) generates its data from the same lists."""

from __future__ import annotations

# CVX code of each COVID-19 vaccine the pharmacy administers -> its manufacturer
VACCINE_CODES: dict[str, str] = {
    "207": "Moderna",
    "208": "Pfizer-BioNTech",
    "210": "AstraZeneca",
    "211": "Novavax",
    "212": "Janssen",
    "300": "Moderna",
    "301": "Pfizer-BioNTech",
}
