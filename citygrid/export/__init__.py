"""Bulk data out of citygrid for other platforms: GeoParquet layers (`geoparquet`) and the province-scale batch
jobs that run on Apache Spark (`spark`)."""
