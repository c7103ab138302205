"""Campaigns: the umbrella over activities with goal, dates, budget, audience, channels, KPIs and live results."""
