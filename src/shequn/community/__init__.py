"""Communities, members, rules/policies, invitations & referral fission, UGC/reviews/Q&A/topics, gatherings."""
