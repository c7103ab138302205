"""Loyalty: the points ledger (earned, spent, refunded) that lotteries and later badges and levels build on."""
