"""feedbackctl: administration commands for a deployed (or local) feedback service stack."""
