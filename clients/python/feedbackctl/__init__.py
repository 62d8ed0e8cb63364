"""feedbackctl: the feedback service from the command line (tokens, feedback, stats, users, events)."""
