"""Province-wide batch work on Apache Spark: geocoding an address file with citygrid's own resolver, and
aggregating exported objects by H3 cell, Beidou grid cell or division.

The same code runs in local mode (`local[2]` here, and in the tests) and on a cluster (`spark-submit --master
…` with citygrid installed on the executors, or `session(master=None)` under spark-submit). Spatial work inside
Spark uses what citygrid stores per object at write time — the H3 cell (resolution 12, a 64-bit integer whose
parents are bit operations) and the Beidou code (whose parents are prefixes) — because Apache Sedona's jars come
only from Maven, which these machines cannot reach.

**Geocoding** (`geocode`): `mapInPandas` over the input's partitions; each Python worker loads the address index
once (from the database, `_index`) and resolves its rows with the same function as the in-process batch job
(`citygrid.address.batch.result_row`), so a row gets the same answer wherever it runs. Executors need the
database (the index load) but nothing else from citygrid's server.

**Aggregation** (`aggregate`): over the GeoParquet files of `citygrid export` (`citygrid.export.geoparquet`);
Spark reads the geometry as WKB and never needs it, since the keys are columns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citygrid.address.batch import MAX_FIELD, OUT_COLUMNS, result_row
from citygrid.grid import beidou
from citygrid.grid.h3cells import STORED_RES, parent_masks
from citygrid.settings import use_python_for_spark

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

    from citygrid.address.resolve import AddressIndex

_DOUBLES = {"confidence", "lon", "lat"}
GEOCODE_SCHEMA = ", ".join(f"{c} {'long' if c == 'row' else 'double' if c in _DOUBLES else 'string'}"
                           for c in OUT_COLUMNS)
_INDEXES: dict[str, AddressIndex] = {}  # per Python worker process: loaded once, used for every partition


def session(master: str | None = "local[2]", app_name: str = "citygrid") -> SparkSession:
    """A Spark session; `master=None` takes the one spark-submit gives."""
    from pyspark.sql import SparkSession

    use_python_for_spark(sys.executable)
    b = SparkSession.builder.appName(app_name).config("spark.ui.enabled", "false") \
        .config("spark.sql.shuffle.partitions", "8").config("spark.sql.execution.arrow.pyspark.enabled", "true")
    if master:
        b = b.master(master)
    return b.getOrCreate()


def _index(database_url: str) -> AddressIndex:
    if database_url not in _INDEXES:
        from citygrid.address.resolve import AddressIndex
        from citygrid.db.engine import engine_for
        from citygrid.security.principal import ANONYMOUS
        from citygrid.security.scope import scoped

        with engine_for(database_url).connect() as c:
            scoped(c, ANONYMOUS)  # the public's index: door plates and roads, as the web process holds it
            _INDEXES[database_url] = AddressIndex.load(c)
    return _INDEXES[database_url]


def _geocoder(database_url: str, column: str, hint: str | None
              ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from citygrid.address.answer import geocode_row
        from citygrid.crs import CGCS2000
        from citygrid.errors import E

        index = _index(database_url)
        for pdf in batches:
            rows = []
            for i, value in zip(pdf["__row"], pdf[column], strict=True):
                text = "" if value is None or value != value else str(value)  # None, NaN: an empty address
                res: dict[str, Any] = {"error": {"error_code": E.address_too_long.code}, "candidates": []} \
                    if len(text) > MAX_FIELD else geocode_row(index, text, hint, 1, CGCS2000)
                rows.append(result_row(int(i), text, res)[1])
            frame = pd.DataFrame(rows, columns=OUT_COLUMNS)
            for c in _DOUBLES:
                frame[c] = pd.to_numeric(frame[c], errors="coerce")
            yield frame
    return run


def read_table(spark: SparkSession, src: Path | str) -> DataFrame:
    """CSV (with a header row, UTF-8) or Parquet, by the name's ending (a directory of Parquet parts too)."""
    name = str(src)
    if name.lower().endswith(".csv"):
        return spark.read.option("header", True).option("encoding", "UTF-8").csv(name)
    return spark.read.parquet(name)


def geocode(spark: SparkSession, src: Path | str, out: Path | str, database_url: str, column: str = "address",
            hint: str | None = None) -> dict[str, int]:
    """Geocode column `column` of `src` into Parquet at `out` (the batch job's columns); returns the counts."""
    from pyspark.sql import functions as F

    df = read_table(spark, src)
    if column not in df.columns:
        raise ValueError(f"no column {column!r} in {src} (columns: {', '.join(df.columns)})")
    rows = df.select(F.monotonically_increasing_id().alias("__row"), F.col(column).cast("string").alias(column))
    result = rows.mapInPandas(_geocoder(database_url, column, hint), GEOCODE_SCHEMA)
    result.write.mode("overwrite").parquet(str(out))
    written = spark.read.parquet(str(out))
    counts = {r["status"]: int(r["count"]) for r in written.groupBy("status").count().collect()}
    return {"rows": sum(counts.values()), "matched": counts.get("matched", 0), "failed": counts.get("failed", 0)}


def _key(by: str) -> Column:
    from pyspark.sql import functions as F

    if by.startswith("h3:") and by[3:].isdigit() and 0 <= int(by[3:]) <= STORED_RES:
        keep, put = parent_masks(int(by[3:]))
        return F.col("h3").bitwiseAND(F.lit(keep)).bitwiseOR(F.lit(put))
    if by.startswith("bgc:") and by[4:].isdigit() and int(by[4:]) in beidou.LEVELS:
        return F.substring("bgc", 1, beidou.LENGTHS[int(by[4:])])
    columns = {"county": "division_code", "township": "township_code", "village": "village_code",
               "unit_grid": "unit_grid", "gov_grid": "gov_grid"}
    if by in columns:
        return F.col(columns[by])
    raise ValueError(f"by must be h3:0..{STORED_RES}, bgc:1..10, county, township, village, unit_grid or gov_grid; "
                     f"got {by!r}")


def aggregate(spark: SparkSession, objects: Path | str, by: str, class_code: str | None = None
              ) -> list[tuple[Any, int]]:
    """Objects per group of the exported files under `objects` (a directory of `class-*.parquet`), sorted by key;
    groups without a key (an object outside every grid) are left out, as `/aggregate` does."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(Path(objects) / "class-*.parquet"))
    if class_code:
        df = df.where(F.col("class_code") == class_code)
    grouped = df.select(_key(by).alias("k")).where(F.col("k").isNotNull()).groupBy("k").count().orderBy("k")
    return [(r["k"], int(r["count"])) for r in grouped.collect()]
