"""Alert rules, alert state, incidents, on-call and escalation (R-INC-*)."""
