"""ipwarmup: learn how to warm up dedicated email-sending IPs.

The package is one import namespace over the repository's folders: ``ipwarmup.envs`` is
``envs/`` (the simulator), ``ipwarmup.agents`` is ``agents/`` (policies),
``ipwarmup.training`` is ``training/`` and ``ipwarmup.serving`` is ``serving/``. This root
module stays light: it imports neither gymnasium, torch nor mlflow.
"""

from importlib.metadata import PackageNotFoundError, version

from ipwarmup.errors import BundleError, ConfigError, IPWarmupError, TelemetryError

try:
    __version__ = version("ipwarmup")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["BundleError", "ConfigError", "IPWarmupError", "TelemetryError", "__version__"]
