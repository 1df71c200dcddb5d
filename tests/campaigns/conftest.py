"""The agents fixture of the integration tests, for the campaigns end-to-end tests."""

from tests.integration.conftest import agents

__all__ = ["agents"]
