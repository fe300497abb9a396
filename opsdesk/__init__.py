"""opsdesk: the platform an operations contractor runs its 7x24 one-stop service on."""

__version__ = "0.1.0"
