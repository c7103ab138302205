"""Anti-abuse for member endpoints: rate limits, per-device and per-phone limits, bot-like bursts, blacklist."""
