"""Alembic environment: runs on the connection handed in by ``Database.open``."""

from alembic import context

from inventory.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations only run through Database.open
    raise RuntimeError("run migrations through inventory.database.Database.open()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
