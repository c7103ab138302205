"""Promotions: campaigns, coupons, flash sales (秒杀), lotteries, prize quizzes, challenges, anti-abuse guard."""
