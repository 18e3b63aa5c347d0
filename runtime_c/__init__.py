"""grimc runtime C sources (package data: include/, src/)."""
