"""Notifications: channels (one module each), message texts, the outbox and acknowledge links."""
