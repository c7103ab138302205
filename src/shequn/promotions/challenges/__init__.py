"""Challenges: UGC challenges with a hashtag, entries, voting or judging, and winners."""
