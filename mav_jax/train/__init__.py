"""Training: the one trainer loop every stage uses, its sharded train step, optimiser and EMA,
Orbax checkpoints, weights (build, restore, export) and the evaluators it runs."""
