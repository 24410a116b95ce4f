"""WSGI entry point (gunicorn offboard.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "offboard.settings")
application = get_wsgi_application()

# What is loaded by now (Django, the app's modules) lives as long as the process: moved out of
# the collector's generations, it is not scanned again by every full collection, which a big
# page's thousands of short-lived objects otherwise trigger (docs/performance.md, web).
gc.freeze()
