"""shequn (社群): self-hosted social CRM and community operations for e-commerce brands."""

__version__ = "0.1.0"
