from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pflow_metrics.ledger.engine import HEAD_REVISION, REVISIONS, create_ledger_engine, current_revision
from pflow_metrics.ledger.migrate import downgrade_to, script_revisions, upgrade_to
from pflow_metrics.ledger.models import Base

TABLES = {"runs", "node_executions", "llm_calls"}


def test_known_revisions_match_the_migration_scripts():
    assert list(REVISIONS) == script_revisions()


def test_migrations_build_exactly_the_models(ledger_url):
    engine = create_ledger_engine(ledger_url)
    upgrade_to(engine, "head")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_go_up_from_empty_and_all_the_way_down(ledger_url):
    engine = create_ledger_engine(ledger_url)
    upgrade_to(engine, "head")
    assert current_revision(engine) == HEAD_REVISION
    assert TABLES <= set(inspect(engine).get_table_names())

    downgrade_to(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade_to(engine, "head")
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()
