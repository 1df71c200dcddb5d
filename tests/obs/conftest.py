from tests.integration.conftest import agents  # noqa: F401  (the same agent processes fixture)
