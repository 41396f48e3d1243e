"""Isolation Forest detection: feature matrix, training, scoring, explanations, verdicts, evaluation."""
