"""Invitations, invite links and QR codes, referral trees, milestone rewards, anti-fraud, the fission report."""
