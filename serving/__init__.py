"""Serving: load an exported policy bundle and decide from live telemetry.

Imports only numpy and the standard library (plus ipwarmup's numpy-only modules):
``from ipwarmup.serving import load_policy`` pulls in neither torch, SB3 nor MLflow.
"""

from ipwarmup.serving.policy import ServedPolicy, load_policy

__all__ = ["ServedPolicy", "load_policy"]
