"""Checks run by the platform's probe or by an agent: definitions, scheduling, results, uptime."""
