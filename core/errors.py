"""The one root error type and its few subclasses.

Messages say where, what was expected and what came, for example
``telemetry.providers.gmail.deferred: expected a count >= 0, got -3``.
"""


class IPWarmupError(Exception):
    """Root of every error ipwarmup raises on purpose."""


class ConfigError(IPWarmupError, ValueError):
    """A configuration file, override or argument is invalid.

    Attributes:
        problems: every problem found, one line each, so all can be reported at once.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class TelemetryError(IPWarmupError, ValueError):
    """A telemetry record given to a served policy is invalid.

    Attributes:
        problems: every bad or missing field, one line each, reported at once.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class BundleError(IPWarmupError):
    """An exported policy bundle is missing, tampered with, truncated or incompatible."""


class MTAError(IPWarmupError):
    """An MTA log, sources file or MTA configuration cannot be used, or a reload failed."""
