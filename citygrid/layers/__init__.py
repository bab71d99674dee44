"""Feature queries for map clients (OGC API Features)."""
