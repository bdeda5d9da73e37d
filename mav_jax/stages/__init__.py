"""Cascade stages: how a batch becomes (inputs, conditioning, target) and the stage's loss."""
