"""Property tests of the descriptor loader: whatever bytes a `domain.yaml` holds, reading it raises
nothing, every problem names the file and a line within it, and it finishes well under a second.

The inputs: arbitrary bytes; chains of aliases (up to an alias bomb); YAML-looking text; random
structures dumped as YAML; the shipped descriptors with a value somewhere replaced by a random
structure; and the shipped descriptors' text cut, spliced and with lines repeated (broken YAML and
duplicate keys).
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh_platform.descriptor.load import read_descriptor
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import ROOT, copy_project

REL = "domains/pharmacy/domain.yaml"
SHIPPED = {d.name: (d / "domain.yaml").read_text() for d in sorted((ROOT / "domains").iterdir()) if d.is_dir()}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        ["pii", "public", "error", "warn", "team:x", "order", "26h", "0 6 * * *", "expect_column_to_exist"]
    ),
)
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12) | scalars, inner, max_size=5),
    max_leaves=40,
)
yamlish = st.text(alphabet=st.sampled_from(list("abc:-[]{},&*!|>'\"#%@`?\n\t \\0123\u00e9\ufeff\x00")), max_size=400)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a parsed descriptor (mapping keys and list indexes)."""
    found = [prefix]
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


def _replace(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    data[path[0]] = _replace(data[path[0]], path[1:], value)
    return data


@st.composite
def mutated_descriptors(draw: st.DrawFn) -> bytes:
    """A shipped descriptor with one value anywhere in it replaced by a random structure."""
    data = yaml.safe_load(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))])
    path = draw(st.sampled_from(_paths(data)))
    return yaml.safe_dump(_replace(data, path, draw(structures)), sort_keys=False, allow_unicode=True).encode()


@st.composite
def spliced_texts(draw: st.DrawFn) -> bytes:
    """A shipped descriptor's text with a slice cut out, a line repeated, or bytes inserted."""
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))].encode()
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["cut", "repeat", "insert"]))
    if kind == "repeat":
        i = draw(st.integers(0, len(lines) - 1))
        return b"".join(lines[: i + 1] + lines[i : i + 1] + lines[i + 1 :])
    start = draw(st.integers(0, len(text)))
    if kind == "cut":
        return text[:start] + text[start + draw(st.integers(0, 200)) :]
    return text[:start] + draw(st.binary(min_size=1, max_size=20)) + text[start:]


@st.composite
def alias_chains(draw: st.DrawFn) -> bytes:
    """Anchors each made of aliases to the one before: from harmless reuse to an exponential bomb."""
    width, depth = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lines = ["domain: pharmacy", "k0: &a0 [x, y]"]
    for level in range(1, depth + 1):
        lines.append(f"k{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


inputs = st.one_of(
    st.binary(max_size=2000),
    alias_chains(),
    yamlish.map(lambda t: t.encode("utf-8", "surrogatepass")),
    structures.map(lambda s: yaml.safe_dump(s, allow_unicode=True).encode()),
    mutated_descriptors(),
    spliced_texts(),
)


# what YAML counts as a line break (so a problem's line is YAML's): a lone CR, old Mac style, is one
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _assert_well_located(problems: list, data: bytes, file: str = REL) -> None:
    last_line = len(YAML_LINE_BREAK.findall(data.decode("utf-8", "replace"))) + 1
    for problem in problems:
        assert problem.file == file, problem
        assert problem.line is not None and 1 <= problem.line <= last_line, (str(problem), last_line)
        assert problem.rule and problem.message, problem


@pytest.fixture(scope="module")
def pharmacy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("descriptor") / "pharmacy"
    folder.mkdir()
    return folder / "domain.yaml"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=inputs)
def test_any_bytes_give_a_descriptor_or_located_problems(pharmacy_file: Path, data: bytes) -> None:
    pharmacy_file.write_bytes(data)
    loaded = read_descriptor(pharmacy_file, REL)
    assert loaded.descriptor is not None or loaded.problems
    _assert_well_located(loaded.problems, data)


_stamp = itertools.count(1)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("mesh") / "project")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(mutated_descriptors(), spliced_texts()))
def test_the_whole_mesh_loads_around_a_generated_descriptor(project: Path, data: bytes) -> None:
    """Through `Mesh.load`, with the rules across domains: the other five domains are untouched and
    every problem, the rules' included, has a file and a line."""
    path = project / REL
    path.write_bytes(data)
    stamp = next(_stamp) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))  # the loader's cache keys on size and modification time
    mesh = Mesh.load(MeshProject.discover(project))
    assert set(mesh.descriptors) >= {"patients", "scheduling", "patient_360"}  # none consumes pharmacy
    texts = {f"domains/{d}/domain.yaml": SHIPPED[d].encode() for d in SHIPPED} | {REL: data}
    for problem in mesh.problems:
        _assert_well_located([problem], texts[problem.file], problem.file)
