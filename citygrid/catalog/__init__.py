"""Object class catalog: 大类/中类/小类 classes, attribute tables and responsible departments.

The catalog is data (`schemas/catalog/*.yaml`), so a county that adopts the official CJ/T 553-2024 table, or
adds local classes, edits YAML rather than code. This package only loads, checks and serves it.
"""

from citygrid.catalog.loader import CatalogError, default_catalog_dir, get_catalog, load_catalog
from citygrid.catalog.model import (
    ATTRIBUTE_TYPES,
    GEOMETRY_TYPES,
    Attribute,
    Catalog,
    Department,
    FieldProblem,
    ObjectClass,
)

__all__ = [
    "ATTRIBUTE_TYPES",
    "GEOMETRY_TYPES",
    "Attribute",
    "Catalog",
    "CatalogError",
    "Department",
    "FieldProblem",
    "ObjectClass",
    "default_catalog_dir",
    "get_catalog",
    "load_catalog",
]
