"""Alembic, driven from code. Imported only when a ledger must change schema or for `db` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import pflow_metrics


def migrations_dir() -> Path:
    """The Alembic scripts: shipped inside the wheel, or the top-level folder of a checkout."""
    packaged = Path(pflow_metrics.__file__).parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def script_revisions() -> list[str]:
    """Every revision Alembic knows, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def upgrade_to(engine: Engine, revision: str = "head", progress: Callable[[int, int], None] | None = None) -> None:
    """Upgrade to `revision`; with `progress`, one revision at a time, telling it
    `progress(applied, to_apply)` after each (the CLI draws a bar with it)."""
    config = alembic_config(engine)
    if progress is None:
        command.upgrade(config, revision)
        return
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    revisions = script_revisions()
    end = len(revisions) if revision == "head" else revisions.index(revision) + 1
    steps = revisions[(revisions.index(current) + 1 if current in revisions else 0):end]
    progress(0, len(steps))
    for done, step in enumerate(steps, 1):
        command.upgrade(config, step)
        progress(done, len(steps))


def downgrade_to(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
