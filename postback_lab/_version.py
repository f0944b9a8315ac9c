"""The package version, at the bottom so every layer can read it (the sender's User-Agent)."""

__version__ = "0.1.0"
