"""Prize quizzes: questions, correct answers, time limits, prizes to all, the first N or a random few."""
