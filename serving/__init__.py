"""Serving: load an exported policy bundle and decide from live telemetry.

Imports only numpy and the standard library (plus ipwarmup's numpy-only modules):
``from ipwarmup.serving import load_policy`` pulls in neither torch, SB3 nor MLflow.
"""

# The package-wide cache stamps, before any kernel is decorated: a kernel builds in code
# and constants from other modules of this package (kernel_layout.py, digits.py).
import ipwarmup.numba_cache  # noqa: F401  # isort: skip
from ipwarmup.serving.policy import ServedPolicy, load_policy

__all__ = ["ServedPolicy", "load_policy"]
