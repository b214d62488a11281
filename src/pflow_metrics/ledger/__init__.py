"""The run ledger: SQLAlchemy models, the store (write/read API) and the report queries."""
