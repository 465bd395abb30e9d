"""Migrate, write and read through Django's ORM; print what the server says of the session."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0)
User.objects.create_user("ada", "ada@example.com", "pw")
with connection.cursor() as cur:
    cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    ssl, version = cur.fetchone()
print(
    json.dumps(
        {
            "sslmode": connection.settings_dict["OPTIONS"].get("sslmode"),
            "ssl": ssl,
            "tls_version": version,
            "users": list(User.objects.values_list("username", flat=True)),
        }
    )
)
