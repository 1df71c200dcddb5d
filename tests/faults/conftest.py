from tests.integration.conftest import agents  # noqa: F401 - the agent-process fixture, shared
