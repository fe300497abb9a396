"""Fault reports per incident and monthly operations reports per customer, as HTML and PDF."""
