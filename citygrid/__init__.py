"""citygrid: unified codes, divisions, object registry and maps for a county's digital public infrastructure."""

__version__ = "0.1.0"
