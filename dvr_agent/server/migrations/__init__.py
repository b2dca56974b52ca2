"""Alembic migrations of dvr-server's schema (``dvr-server db upgrade``)."""
