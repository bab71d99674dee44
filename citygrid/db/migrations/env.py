"""Alembic environment: the URL comes from the caller (citygrid.db.migrate) or citygrid's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.sql.schema import SchemaItem

from citygrid.db.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: SchemaItem, name: str | None, type_: str, reflected: bool,
                   compare_to: SchemaItem | None) -> bool:
    # PostGIS and tiger tables are not ours.
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from citygrid.db.engine import database_url

        url = database_url()
    connectable = create_engine(url)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


run_migrations_online()
