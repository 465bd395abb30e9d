"""A minimal Django project configured for Heroku Postgres as Heroku's docs show."""

import dj_database_url

SECRET_KEY = "test-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
USE_TZ = True
DATABASES = {"default": dj_database_url.config(conn_max_age=600, ssl_require=True)}
