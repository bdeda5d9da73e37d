"""Training: optimiser + EMA, the sharded train step (the loop, checkpoints and export are next)."""
