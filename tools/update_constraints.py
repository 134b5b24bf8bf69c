"""Regenerate ``constraints.txt``: one set of versions of fastinput's dependencies, all extras, that resolve together.

Run from the repository root (on Linux, with the Python version CI uses)::

    python tools/update_constraints.py

It asks pip to resolve fastinput's requirements with every extra (read from ``pyproject.toml``, so nothing is
built) as if nothing were installed (``pip install --dry-run --ignore-installed --report``), and writes each
package pip picked as ``name==version``. The README's install commands and ``.ci/run`` pass the file to pip with
``-c constraints.txt``: with every version fixed, pip never backtracks (it can spend half an hour trying versions
of aiobotocore, boto3 and moto without it). This run itself may backtrack for a while; that is its purpose.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SELF = re.compile(r"^fastinput\[([^\]]+)\]$")


def requirements(project: dict) -> list[str]:
    """fastinput's dependencies and those of every extra, with ``fastinput[...]`` self-references expanded."""
    extras = project["optional-dependencies"]
    found: list[str] = list(project["dependencies"])
    for names in extras.values():
        for requirement in names:
            if not SELF.match(requirement) and requirement not in found:
                found.append(requirement)
    return found


def resolve(requirements: list[str]) -> dict[str, str]:
    """What pip would install for ``requirements`` in an empty environment: {name: version}."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), *requirements], check=True)
        installs = json.loads(report.read_text())["install"]
    # A local label (torch 2.13.0+cpu from a local wheel) is dropped: ==2.13.0 matches it, and PyPI has no other.
    return {item["metadata"]["name"].lower(): item["metadata"]["version"].split("+")[0] for item in installs}


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    print("resolving fastinput's requirements, every extra (pip, a few minutes) ...", flush=True)
    pins = resolve(requirements(project))
    lines = [
        "# One set of versions of fastinput's dependencies (all extras) that resolve together, for pip's -c.",
        f"# Regenerate: python tools/update_constraints.py (Python {sys.version_info.major}."
        f"{sys.version_info.minor}, {sys.platform}).",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    (ROOT / "constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"constraints.txt: {len(pins)} packages")


if __name__ == "__main__":
    main()
