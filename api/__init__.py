"""citygrid's web API (FastAPI) over the domain core in `citygrid`."""
