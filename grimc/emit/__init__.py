"""grimc.emit."""
