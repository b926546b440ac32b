"""The test run's settings: the development settings, chosen explicitly.

The application fails closed (no DEBUG variable means DEBUG off, and then a SECRET_KEY is
required). Tests run the development configuration on purpose; the production one is checked
in a fresh process by tests/test_deploy_settings.py. pytest-django forces DEBUG off while tests
run, as usual.
"""

import os

os.environ.setdefault("DEBUG", "1")

from asksage_admin.settings import *  # noqa: E402, F403
