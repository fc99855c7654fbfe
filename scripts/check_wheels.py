#!/usr/bin/env python3
"""Check that the pinned runtime dependencies install from wheels on every target ser-live supports.

Why: pip silently falls back to an sdist when no wheel fits, and an sdist of PyQt6 cannot be built on
a Raspberry Pi (it dies on `qmake`). The README promises `scripts/setup.sh` works on a laptop and on
Pi OS bookworm and trixie, so every pin must resolve to a wheel for each of those interpreters and
C libraries. This asks PyPI (a dry-run resolve with `--platform`, nothing is installed), so it is not
part of the test suite; `scripts/pi-check.sh` runs it, and anyone can:

    python scripts/check_wheels.py            # runtime dependencies, every target
    python scripts/check_wheels.py --extras dev

pip evaluates environment markers against the interpreter running it, not the target, so this
script evaluates the markers in requirements/constraints.txt itself for each target and hands pip a
marker-free constraints file. The dependencies' own markers are still evaluated by pip for this
machine; none of ser-live's runtime closure has a platform marker that differs between targets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
OLDEST_MANYLINUX_GLIBC_MINOR = 17  # manylinux2014 == manylinux_2_17, the oldest tag worth listing


@dataclass(frozen=True)
class Target:
    """An operating system ser-live must install on from wheels alone."""

    name: str
    machine: str
    python_version: str  # "3.11"
    glibc_minor: int  # glibc 2.N

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker variables as pip would see them on the target."""
        env = default_environment()
        env.update(
            platform_machine=self.machine,
            python_version=self.python_version,
            python_full_version=f"{self.python_version}.0",
            platform_system="Linux",
            sys_platform="linux",
            os_name="posix",
            implementation_name="cpython",
            platform_python_implementation="CPython",
        )
        return env

    def pip_platform_args(self) -> list[str]:
        """Every manylinux tag the target's glibc accepts: pip does not expand `manylinux_2_36` downwards."""
        args: list[str] = []
        for minor in range(self.glibc_minor, OLDEST_MANYLINUX_GLIBC_MINOR - 1, -1):
            args += ["--platform", f"manylinux_2_{minor}_{self.machine}"]
        args += ["--platform", f"manylinux2014_{self.machine}"]
        abi = "cp" + self.python_version.replace(".", "")
        return args + ["--python-version", self.python_version, "--implementation", "cp", "--abi", abi]


TARGETS = (
    Target("Debian 12 bookworm x86_64", "x86_64", "3.11", 36),
    Target("Pi OS / Debian 12 bookworm arm64", "aarch64", "3.11", 36),
    Target("Pi OS / Debian 13 trixie arm64", "aarch64", "3.13", 41),
)


def pins_for(target: Target, constraints_text: str) -> dict[str, Requirement]:
    """The constraints that apply on `target`, by canonical name; a name pinned twice there is an error."""
    env = target.marker_environment()
    pins: dict[str, Requirement] = {}
    for line in constraints_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"{req.name} is pinned twice for {target.name}: {pins[name]} and {req}")
        pins[name] = req
    return pins


def project_requirements(extras: list[str]) -> list[str]:
    """ser-live's own dependencies (and those of the given extras) from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return reqs


def resolve(target: Target, requirements: list[str], pins: dict[str, Requirement]) -> list[tuple[str, str, str]]:
    """Resolve `requirements` under `pins` for `target` from wheels only; (name, version, wheel file) each."""
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{req.name}{req.specifier}\n" for req in pins.values()))
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--only-binary=:all:", "--target", str(Path(tmp) / "t"), "--report", str(report),
               "-c", str(constraints), *target.pip_platform_args(), *requirements]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
            raise RuntimeError("; ".join(errors) or done.stderr.strip())
        installs = json.loads(report.read_text())["install"]
    return [(i["metadata"]["name"], i["metadata"]["version"], i["download_info"]["url"].rsplit("/", 1)[1])
            for i in installs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default="", help="comma-separated extras to include, e.g. dev")
    args = parser.parse_args()
    extras = [e for e in args.extras.split(",") if e]
    requirements = project_requirements(extras)
    text = CONSTRAINTS.read_text()
    failed = 0
    for target in TARGETS:
        pins = pins_for(target, text)
        try:
            resolved = resolve(target, requirements, pins)
        except RuntimeError as exc:
            print(f"FAIL {target.name}: {exc}")
            failed += 1
            continue
        unpinned = [name for name, _, _ in resolved if canonicalize_name(name) not in pins]
        status = "ok" if not unpinned else f"FAIL, not pinned: {', '.join(unpinned)}"
        failed += bool(unpinned)
        print(f"{status} {target.name} (Python {target.python_version}, glibc 2.{target.glibc_minor}): "
              f"{len(resolved)} wheels")
        for name, version, wheel in resolved:
            print(f"    {name}=={version}  {wheel}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
