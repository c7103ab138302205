"""Lotteries: weighted prizes with stock, draws per day or for points, commit-reveal randomness anyone can verify."""
