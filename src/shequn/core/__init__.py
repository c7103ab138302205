"""Core: settings, database, portable types, auth primitives, jobs, signals, i18n, errors. Imports no domain."""
