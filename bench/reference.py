"""The reference for the --reference comparisons: Sippy 2.5.0 from PyPI in a virtualenv of its own.

The virtualenv is made on first use (`python -m venv` + `pip install sippy==2.5.0`, a few seconds)
under $XDG_CACHE_HOME/sippy-bench (default ~/.cache/sippy-bench), outside the checkout, so that its
`sippy` package never shadows this project's. $SIPPY_REF_VENV names another directory.
"""

from __future__ import annotations

import os
import subprocess
import sys

VERSION = "2.5.0"
LABEL = f"Sippy {VERSION}"


def venv_dir() -> str:
    if os.environ.get("SIPPY_REF_VENV"):
        return os.environ["SIPPY_REF_VENV"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "sippy-bench", f"ref-venv-{VERSION}")


def python() -> str:
    """The reference virtualenv's interpreter, the virtualenv made first if it is not there."""
    venv = venv_dir()
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(os.path.join(venv, "bin", "b2bua_radius")):
        return py
    print(f"making the reference virtualenv ({LABEL} from PyPI) in {venv}", file=sys.stderr, flush=True)
    # The base interpreter, not a virtualenv's: a venv made from a venv's python still works, but
    # this keeps the reference independent of the checkout's .venv.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", venv], check=True)
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"sippy=={VERSION}"], check=True)
    return py


def b2bua_radius() -> list[str]:
    """The command that runs the reference's b2bua_radius (its flags are the classic ones)."""
    py = python()
    return [py, os.path.join(os.path.dirname(py), "b2bua_radius")]
