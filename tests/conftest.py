"""Fixtures for the whole suite. Real-component fixtures live in tests/fixtures/, one module each,
and start at most one instance per test session."""

pytest_plugins: list[str] = ["tests.fixtures.testbed", "tests.fixtures.models", "tests.fixtures.postgres",
                             "tests.fixtures.chromium"]
