"""Service test fixtures (defined in helpers.py)."""

from tests.service.helpers import make_service, service  # noqa: F401
