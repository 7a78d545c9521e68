"""ipwarmup.serving."""
