"""grimc.frontend."""
