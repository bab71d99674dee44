"""Grids: H3 cells, unit grids, governance grids, and aggregation over them."""
