"""The test run's settings: the development settings, chosen explicitly.

The application fails closed (no DEBUG variable means DEBUG off, and then a SECRET_KEY is
required). Tests run the development configuration on purpose; the production one is checked
in a fresh process by tests/test_deploy_settings.py. pytest-django forces DEBUG off while tests
run, as usual.
"""

import os

os.environ.setdefault("DEBUG", "1")

from asksage_admin.settings import *  # noqa: E402, F403

# Unit tests run each task as it is enqueued (on commit, for the emails); the real worker
# process runs in tests/test_task_worker.py against the database backend.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
