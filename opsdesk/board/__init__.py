"""The fleet status board: every visible customer's hosts, checks, services and incidents at once."""
