"""The constraints file picks exactly one pin per package on every supported target (offline check).

`scripts/check_wheels.py` asks PyPI whether those pins have wheels; this test only proves the
environment markers in requirements/constraints.txt are coherent, so a typo in a marker cannot leave a
target with two pins or none for a runtime dependency.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _check_wheels() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_wheels", ROOT / "scripts" / "check_wheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_wheels = _check_wheels()
TEXT = check_wheels.CONSTRAINTS.read_text()


@pytest.mark.parametrize("target", check_wheels.TARGETS, ids=lambda t: t.name)
def test_every_runtime_dependency_has_one_exact_pin(target) -> None:
    pins = check_wheels.pins_for(target, TEXT)
    for line in check_wheels.project_requirements([]):
        name = canonicalize_name(Requirement(line).name)
        assert name in pins, f"{name} is not pinned for {target.name}"
        assert str(pins[name].specifier).startswith("=="), pins[name]


def test_pyqt6_on_bookworm_arm64_is_a_release_with_manylinux_2_28_wheels() -> None:
    bookworm, trixie = (t for t in check_wheels.TARGETS if t.machine == "aarch64")
    old, new = check_wheels.pins_for(bookworm, TEXT), check_wheels.pins_for(trixie, TEXT)
    assert str(old["pyqt6"].specifier) == "==6.7.1" and str(old["pyqt6-qt6"].specifier) == "==6.7.3"
    assert old["pyqt6"] != new["pyqt6"] and old["numpy"].specifier == new["numpy"].specifier


def test_a_package_pinned_twice_for_one_target_is_an_error() -> None:
    target = check_wheels.TARGETS[0]
    with pytest.raises(ValueError, match="pinned twice"):
        check_wheels.pins_for(target, "numpy==2.4.6\nnumpy==2.4.5; python_version >= '3.10'\n")


def test_manylinux_tags_cover_every_glibc_up_to_the_targets() -> None:
    bookworm = check_wheels.TARGETS[1]
    args = bookworm.pip_platform_args()
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert platforms[0] == "manylinux_2_36_aarch64" and "manylinux_2_28_aarch64" in platforms
    assert "manylinux_2_37_aarch64" not in platforms
    assert args[args.index("--abi") + 1] == "cp311"
