"""hublink's tests; a package so that shared helpers import as tests.conftest."""
