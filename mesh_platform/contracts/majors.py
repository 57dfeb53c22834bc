"""Majors published side by side: which consumers pin an older major, and what its sunset means.

A producer that makes a breaking change declares the product a second time in its descriptor with
the new major `version`; the older entry stays, built and audited as `<product>_v<major>`, while
consumers pin it in their consumes (`<domain>.<product>@<major>`). A `sunset` date on the older
entry warns the consumers still pinned to it (at `mesh validate` and as a WARN check on their runs);
after the date the older major is no longer built (its last published version stays readable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mesh_platform.checks.asset_checks import PINNED_MAJORS_CHECK
from mesh_platform.checks.evaluate import CheckOutcome
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh


@dataclass(frozen=True)
class SunsetPin:
    """A consumer pinned to an older major that carries a sunset date."""

    consumer: str
    index: int  # in the consumer's consumes
    producer: Descriptor
    product: Product

    @property
    def ref(self) -> str:
        return f"{self.producer.domain}.{self.product.pinned_ref}"

    @property
    def latest(self) -> str:
        current = self.producer.majors_of(self.product.family)[0]
        return f"{self.producer.domain}.{current.family}@{current.major}"

    def message(self, today: date | None = None) -> str:
        sunset = self.product.sunset
        assert sunset is not None
        if self.product.sunset_passed(today):
            return (
                f"{self.consumer} pins {self.ref}, sunset on {sunset}: it is no longer built, and {self.consumer} "
                f"reads its last published version; move to {self.latest}"
            )
        days = (sunset - (today or date.today())).days
        return f"{self.consumer} pins {self.ref}, which is sunset on {sunset} (in {days} days): move to {self.latest}"


def sunset_pins(mesh: Mesh, consumer: str) -> list[SunsetPin]:
    """The majors `consumer` pins that carry a sunset date."""
    descriptor = mesh.descriptors.get(consumer)
    found = []
    for i, ref in enumerate(descriptor.consumed_refs if descriptor else []):
        if descriptor is None or descriptor.pinned_major(ref) is None:
            continue
        try:
            producer, product = mesh.product(mesh.resolve(consumer, ref))
        except KeyError:
            continue
        if product.sunset is not None:
            found.append(SunsetPin(consumer, i, producer, product))
    return found


def sunset_warnings(mesh: Mesh, today: date | None = None) -> list[Problem]:
    """`mesh validate`'s warnings: each consumer pinned to a major with a sunset date, and each older
    major past its sunset (no longer built)."""
    warnings = []
    for consumer in mesh.descriptors:
        for pin in sunset_pins(mesh, consumer):
            field = f"consumes[{pin.index}]"
            warnings.append(
                Problem(mesh.files[consumer], field, "pinned-major-sunset", pin.message(today), None, consumer)
            )
    for domain, descriptor in mesh.descriptors.items():
        for i, product in enumerate(descriptor.products):
            if product.sunset_passed(today):
                message = (
                    f"{domain}.{product.pinned_ref} passed its sunset ({product.sunset}): it is no longer built; "
                    f"its last published version stays readable to the consumers still pinned to it "
                    f"({', '.join(mesh.consumers_of(domain, product.name)) or 'none'})"
                )
                warnings.append(
                    Problem(mesh.files[domain], f"products[{i}].sunset", "major-sunset", message, None, domain)
                )
    return mesh.located(warnings)


def pinned_majors_outcome(mesh: Mesh, consumer: str, today: date | None = None) -> CheckOutcome:
    """The WARN check on each product of a domain that pins majors: fails while a pinned major has a
    sunset date (its consumers have to move), passes otherwise."""
    pins = sunset_pins(mesh, consumer)
    descriptor = mesh.descriptors[consumer]
    pinned = [
        f"{ref}@{descriptor.pinned_major(ref)}"
        for ref in descriptor.consumed_refs
        if descriptor.pinned_major(ref) is not None
    ]
    summary = "; ".join(p.message(today) for p in pins) or f"no pinned major has a sunset date ({', '.join(pinned)})"
    metadata = {"pinned": ", ".join(pinned), "sunset": ", ".join(f"{p.ref} {p.product.sunset}" for p in pins)}
    return CheckOutcome(PINNED_MAJORS_CHECK, not pins, False, "warn", metadata, summary)
