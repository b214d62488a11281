"""Errors that the CLI turns into one line on stderr and a documented exit code."""

EXIT_OK = 0
EXIT_FAILURE = 1  # the workflow failed, a budget was exceeded, some ingest lines were bad
EXIT_USAGE = 2  # bad options or input, or a ledger we must not touch


class PflowMetricsError(Exception):
    """Base for expected errors: the message is shown as is, without a traceback."""

    exit_code = EXIT_USAGE


class UsageError(PflowMetricsError):
    """Bad input from the user: an option value, a file, a workflow."""


class LedgerError(PflowMetricsError):
    """The ledger cannot be used as it is (newer schema, not a database, damaged)."""


class LedgerUnavailable(PflowMetricsError):
    """The ledger could not be written just now (locked, read-only, disk full, server down)."""

    exit_code = EXIT_FAILURE


class RecordError(PflowMetricsError, ValueError):
    """A run record that does not have the documented shape; the message names the field."""
