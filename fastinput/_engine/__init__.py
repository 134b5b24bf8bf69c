"""The engine's internals: the runtime that every stage is built on. Not public API; see ``docs/architecture.md``."""
