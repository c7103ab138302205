"""Gatherings (online and offline): registration, capacity, waitlist, reminders, check-in, feedback."""
