"""Audience: customers, platform identities and merges, purchase facts, social reach (tags, RFM and segments later)."""
