"""ipwarmup.training."""
