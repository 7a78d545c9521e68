"""ipwarmup.agents."""
