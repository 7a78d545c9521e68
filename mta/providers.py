"""Map a recipient domain (or the MX host that answered) to an inbox provider.

The shipped map names the domains and MX host suffixes of the four providers the simulator
models; everything else is ``other``. KumoMTA's shipped shaping rules group providers by the
same MX suffixes (``assets/policy-extras/shaping.toml``: ``.google.com``/``.googlemail.com``,
``.olc.protection.outlook.com``, ``.yahoodns.net``, ``.icloud.com``), which is what lets a
Google-hosted company domain count as Gmail when the log names its MX.
"""

from __future__ import annotations

from collections.abc import Mapping

PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
"""The providers of the shipped policy, in the telemetry's order."""

OTHER = "other"

DOMAINS: dict[str, str] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), "gmail"),
    **dict.fromkeys(
        (
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "hotmail.it",
            "hotmail.es",
            "live.co.uk",
            "live.fr",
            "outlook.fr",
            "outlook.de",
        ),
        "microsoft",
    ),
    **dict.fromkeys(
        (
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "aol.com",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.co.jp",
            "yahoo.ca",
            "aim.com",
        ),
        "yahoo",
    ),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), "apple"),
}
"""Consumer mailbox domains of each provider."""

MX_SUFFIXES: dict[str, str] = {
    ".google.com": "gmail",
    ".googlemail.com": "gmail",
    ".protection.outlook.com": "microsoft",
    ".yahoodns.net": "yahoo",
    ".icloud.com": "apple",
}
"""MX host name suffixes of each provider (KumoMTA's shipped provider blocks)."""


class ProviderMap:
    """Tell the provider of a recipient from its domain, else from the answering MX host.

    Args:
        overrides: extra ``domain -> provider`` entries; a key starting with a dot is an MX
            (or domain) suffix. They take precedence over the shipped map.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.domains = dict(DOMAINS)
        self.suffixes = dict(MX_SUFFIXES)
        for key, provider in (overrides or {}).items():
            key = key.lower()
            if key.startswith("."):
                self.suffixes = {key: provider, **self.suffixes}
            else:
                self.domains[key] = provider
        self._cache: dict[tuple[str, str], str] = {}

    def _suffix(self, name: str) -> str | None:
        dotted = "." + name
        for suffix, provider in self.suffixes.items():
            if dotted.endswith(suffix):
                return provider
        return None

    def provider(self, domain: str, mx_host: str = "") -> str:
        """Return the provider of a recipient domain, given the MX host that answered if known."""
        key = (domain, mx_host)
        found = self._cache.get(key)
        if found is None:
            domain, mx_host = domain.lower().rstrip("."), mx_host.lower().rstrip(".")
            found = (
                self.domains.get(domain)
                or self._suffix(domain)
                or (self._suffix(mx_host) if mx_host else None)
                or OTHER
            )
            self._cache[key] = found
        return found

    def domains_of(self, provider: str) -> list[str]:
        """Return the domains mapped to one provider, sorted (for Postfix's transport map)."""
        return sorted(d for d, p in self.domains.items() if p == provider)
