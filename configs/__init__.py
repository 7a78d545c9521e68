"""Shipped configuration files: scenarios, suites and experiments (YAML)."""
