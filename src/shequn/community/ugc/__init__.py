"""UGC: posts, topics and hashtags, product reviews, questions and answers, reactions, moderation."""
