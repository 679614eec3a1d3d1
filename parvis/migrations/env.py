"""Alembic environment: migrations run on the connection Parvis passes in."""

from alembic import context

from parvis.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Parvis migrations run through parvis.store.migrate (or `parvis db upgrade`)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
