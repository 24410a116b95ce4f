"""One env-driven settings module: SQLite under var/ by default, DATABASE_URL for PostgreSQL."""

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("OFFBOARD_VAR_DIR", Path.cwd() / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Production is the default: a deployment that forgets a setting shows no tracebacks. A local
# demo asks for debug (`make run`, `offboard demo` and `offboard serve` do; so do the tests).
DEBUG = env_bool("OFFBOARD_DEBUG", False)
SECRET_KEY = os.environ.get("OFFBOARD_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError(
            "OFFBOARD_SECRET_KEY must be set: Offboard runs in production mode unless "
            "OFFBOARD_DEBUG=true (`make run` and `offboard demo` set it for a local demo)."
        )
    SECRET_KEY = "dev-only-insecure-key-set-OFFBOARD_SECRET_KEY-in-production"
ALLOWED_HOSTS = os.environ.get("OFFBOARD_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(
    ","
)
SITE_HOST = os.environ.get("OFFBOARD_SITE_HOST", "offboard.localhost")
# Where Offboard is reachable for the people it emails links to (portal links): set it when
# the app runs behind a proxy; otherwise links use the address the request came to.
OFFBOARD_BASE_URL = os.environ.get("OFFBOARD_BASE_URL", "").strip()
# The client portal's rate limits, in requests per minute (0: no limit), counted in the
# database: per IP address (REMOTE_ADDR) and per link (offboard.portal.ratelimit).
OFFBOARD_PORTAL_RATE_PER_IP = int(os.environ.get("OFFBOARD_PORTAL_RATE_PER_IP", "30"))
OFFBOARD_PORTAL_RATE_PER_LINK = int(os.environ.get("OFFBOARD_PORTAL_RATE_PER_LINK", "60"))

# No django.contrib.admin (decision 0011): every change goes through a service and its event.
# offboard.accounts comes before django.contrib.auth so that its `changepassword` and
# `createsuperuser` (which refuse, naming the `offboard user` commands) replace Django's.
INSTALLED_APPS = [
    "offboard.accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "ninja",  # serves the API docs' Swagger UI from static files, not a CDN
    "offboard.core",
    "offboard.evidence",
    "offboard.clients",
    "offboard.playbooks",
    "offboard.ledger",
    "offboard.cases",
    "offboard.notifications",
    "offboard.portal",
    "offboard.inbound",
    "offboard.calendar",
    "offboard.webhooks",
    "offboard.reminders",
    "offboard.connectors",
    "offboard.jobs",
    "offboard.mfa",
    "offboard.security",
    "offboard.sso",
    "offboard.web",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # First: the client's address behind trusted proxies, for everything that reads it.
    "offboard.core.proxies.TrustedProxyMiddleware",
    # Then every request's id and its log line, then its time (docs/deploy.md).
    "offboard.core.request_log.RequestIdMiddleware",
    "offboard.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),  # static, production
    # Refuses an oversized or unreadable body before the session, CSRF or a view reads it.
    "offboard.web.middleware.RequestBodyLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in session's "last seen", at most once a minute; an ended session signs out.
    "offboard.security.middleware.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Under an organization policy of "everyone", a member without a second factor is sent
    # to enrol it before anything else (offboard.mfa, decision 0027).
    "offboard.mfa.middleware.EnrolmentRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "offboard.web.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "offboard.urls"
WSGI_APPLICATION = "offboard.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'offboard.sqlite3'}"),
        conn_max_age=int(os.environ.get("OFFBOARD_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE makes writers queue for the lock at
    # BEGIN instead of failing on upgrade, so concurrent actions serialize instead of erroring.
    # synchronous=FULL: a committed action (and its event) survives a power cut; NORMAL
    # could lose the last acknowledged ones, which an evidence system must not.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Reverse proxies and load balancers whose X-Forwarded-For / X-Forwarded-Proto are believed
# (addresses or networks, comma-separated; offboard.core.proxies, docs/deploy.md).
OFFBOARD_TRUSTED_PROXIES = os.environ.get("OFFBOARD_TRUSTED_PROXIES", "127.0.0.1,::1")

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Rendered workspace rows, kept by a digest of what they show (web/fragments.py): an entry is
# never stale, so each process keeps its own, bounded (about 3 KB a row). "false" renders
# every row afresh.
OFFBOARD_FRAGMENT_CACHE = os.environ.get("OFFBOARD_FRAGMENT_CACHE", "true").lower() != "false"
# Whole workspace bodies, kept by a digest of the rows they show (web/page_cache.py): never
# stale for a change in the database; used no longer than OFFBOARD_PAGE_CACHE_SECONDS, and
# never past an instant or a midnight the page compares the time with. "false" builds every
# workspace afresh.
OFFBOARD_PAGE_CACHE = os.environ.get("OFFBOARD_PAGE_CACHE", "true").lower() != "false"
OFFBOARD_PAGE_CACHE_SECONDS = int(os.environ.get("OFFBOARD_PAGE_CACHE_SECONDS", "300"))
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "pages": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "offboard-pages",
        "TIMEOUT": OFFBOARD_PAGE_CACHE_SECONDS,
        "OPTIONS": {"MAX_ENTRIES": int(os.environ.get("OFFBOARD_PAGE_CACHE_PAGES", "64"))},
    },
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "offboard-fragments",
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": int(os.environ.get("OFFBOARD_FRAGMENT_CACHE_ROWS", "20000"))},
    },
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "files"
# Static files: in production WhiteNoise serves them from STATIC_ROOT (no separate web
# server), under content-hashed names with a year's cache once `collectstatic` has written
# its manifest (`offboard serve --prod` runs it first; docs/deploy.md). Without a manifest
# (debug, or before the first collectstatic) names stay plain, so no page fails for it.
# OFFBOARD_STATIC_MANIFEST=on makes `collectstatic` write the hashed names in the first place
# (`offboard serve --prod` sets it).
_STATIC_MANIFEST = os.environ.get("OFFBOARD_STATIC_MANIFEST") == "on" or (
    (STATIC_ROOT / "staticfiles.json").is_file()
)


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else float(default)
    except ValueError:
        value = minimum - 1
    if not value >= minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be a number of at least {minimum:g}.")
    return value


def evidence_storage(env: Mapping[str, str]) -> dict[str, Any]:
    """STORAGES["default"]: evidence, certificates and packs' files in MEDIA_ROOT, or with
    OFFBOARD_STORAGE=s3 in an S3-compatible bucket (docs/deploy.md "Storage", decision 0031).
    Credentials only through boto3's own chain (AWS_ACCESS_KEY_ID..., instance role)."""
    kind = env.get("OFFBOARD_STORAGE", "").strip().lower() or "local"
    if kind == "local":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if kind != "s3":
        raise ImproperlyConfigured(f"OFFBOARD_STORAGE={kind!r} is not known: use local or s3.")
    bucket = env.get("OFFBOARD_S3_BUCKET", "").strip()
    if not bucket:
        raise ImproperlyConfigured(
            "OFFBOARD_S3_BUCKET must name the bucket when OFFBOARD_STORAGE=s3 "
            "(docs/deploy.md, Storage)."
        )
    endpoint = env.get("OFFBOARD_S3_ENDPOINT_URL", "").strip() or None
    return {
        "BACKEND": "offboard.evidence.s3.EvidenceS3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": env.get("OFFBOARD_S3_REGION", "").strip() or "us-east-1",
            "location": env.get("OFFBOARD_S3_PREFIX", "").strip().strip("/"),
            # S3-compatible stores (MinIO, Ceph...) address buckets in the path.
            "addressing_style": "path" if endpoint else "auto",
            "connect_timeout": _env_number(env, "OFFBOARD_S3_CONNECT_TIMEOUT", 5, 0.1),
            "read_timeout": _env_number(env, "OFFBOARD_S3_READ_TIMEOUT", 60, 0.1),
            "max_attempts": int(_env_number(env, "OFFBOARD_S3_MAX_ATTEMPTS", 3, 1)),
            "multipart_chunksize": int(_env_number(env, "OFFBOARD_S3_PART_MIB", 8, 5) * 2**20),
            "multipart_threshold": int(_env_number(env, "OFFBOARD_S3_PART_MIB", 8, 5) * 2**20),
            "max_concurrency": int(_env_number(env, "OFFBOARD_S3_CONCURRENCY", 2, 1)),
        },
    }


STORAGES = {
    "default": evidence_storage(os.environ),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _STATIC_MANIFEST and not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Evidence uploads: bounded in size, read in chunks, stored by sha256.
OFFBOARD_MAX_UPLOAD_BYTES = int(os.environ.get("OFFBOARD_MAX_UPLOAD_BYTES", str(100 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Files are counted as they are read and stopped at their limit before they are spooled
# (core/bodies.py): OFFBOARD_MAX_UPLOAD_BYTES where an endpoint that takes files let the
# sender in, DATA_UPLOAD_MAX_MEMORY_SIZE anywhere else.
FILE_UPLOAD_HANDLERS = [
    "offboard.core.bodies.BoundedUploads",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Cookies and headers. In production (OFFBOARD_DEBUG=false) cookies travel over HTTPS only;
# HSTS and the HTTPS redirect are left to the TLS-terminating proxy (OFFBOARD_HSTS_SECONDS
# turns HSTS on here when there is none).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
# Over HTTPS the session cookie carries the __Host- prefix: the browser keeps it only if it is
# Secure, for path / and without a Domain, so no sibling subdomain can plant or read it.
SESSION_COOKIE_NAME = "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
# Sign in again after this many minutes without a request, and after this many hours in any
# case (OWASP ASVS 4.0 V3.3.2, level 2; offboard.security.middleware, decision 0028).
OFFBOARD_SESSION_IDLE_MINUTES = int(os.environ.get("OFFBOARD_SESSION_IDLE_MINUTES", "30"))
OFFBOARD_SESSION_MAX_HOURS = int(os.environ.get("OFFBOARD_SESSION_MAX_HOURS", "12"))
SESSION_COOKIE_AGE = OFFBOARD_SESSION_IDLE_MINUTES * 60
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = int(os.environ.get("OFFBOARD_HSTS_SECONDS", "0"))
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (offboard.web.middleware): scripts from our origin only.
OFFBOARD_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# /metrics (Prometheus): with a token set, a scrape must send `Authorization: Bearer <token>`
# (docs/deploy.md). Under gunicorn also set PROMETHEUS_MULTIPROC_DIR (prometheus_client's own).
OFFBOARD_METRICS_TOKEN = os.environ.get("OFFBOARD_METRICS_TOKEN", "")

# Login throttling (django-axes): 5 failed logins for one username from one IP address lock
# that pair out for 15 minutes; the lockout page says so. Attempts are kept in the database,
# so every web process sees them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Refuses passwords where the organization requires single sign-on (offboard.sso).
    "offboard.sso.backends.SsoRequiredBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("OFFBOARD_LOGIN_THROTTLING", True)
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "offboard.web.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# Password reset by e-mail (offboard.security, decision 0028): the link works once and for this
# many minutes; requests are limited per hour for one username or address and for one IP
# address (0: no limit); the e-mail is sent after the answer (`thread`) or before it (`inline`).
OFFBOARD_PASSWORD_RESET_MINUTES = int(os.environ.get("OFFBOARD_PASSWORD_RESET_MINUTES", "30"))
OFFBOARD_PASSWORD_RESET_PER_ADDRESS_HOURLY = int(
    os.environ.get("OFFBOARD_PASSWORD_RESET_PER_ADDRESS_HOURLY", "5")
)
OFFBOARD_PASSWORD_RESET_PER_IP_HOURLY = int(
    os.environ.get("OFFBOARD_PASSWORD_RESET_PER_IP_HOURLY", "20")
)
OFFBOARD_PASSWORD_RESET_SEND = os.environ.get("OFFBOARD_PASSWORD_RESET_SEND", "thread").strip()

# Passkeys (offboard.mfa, decision 0027): the WebAuthn relying party. Unset, the origin is
# OFFBOARD_BASE_URL's, else the address a request came to, and the RP ID is its host name.
# Passkeys are bound to the RP ID: changing it later makes every registered passkey unusable.
OFFBOARD_WEBAUTHN_ORIGIN = os.environ.get("OFFBOARD_WEBAUTHN_ORIGIN", "").strip().rstrip("/")
OFFBOARD_WEBAUTHN_RP_ID = os.environ.get("OFFBOARD_WEBAUTHN_RP_ID", "").strip()
if not OFFBOARD_WEBAUTHN_ORIGIN and OFFBOARD_BASE_URL:
    _base = OFFBOARD_BASE_URL.split("://", 1)
    OFFBOARD_WEBAUTHN_ORIGIN = f"{_base[0]}://{_base[-1].split('/', 1)[0]}"

# Logs on stderr: one JSON object per line in production, with the request's id
# (offboard.core.request_log), text in debug; OFFBOARD_LOG_FORMAT=json|text decides. One line
# per request on `offboard.request` (OFFBOARD_ACCESS_LOG, on by default in production).
OFFBOARD_LOG_FORMAT = os.environ.get("OFFBOARD_LOG_FORMAT", "text" if DEBUG else "json").strip()
if OFFBOARD_LOG_FORMAT not in ("json", "text"):
    raise RuntimeError(f"OFFBOARD_LOG_FORMAT={OFFBOARD_LOG_FORMAT!r}: use json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "offboard.core.request_log.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json"} if OFFBOARD_LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("OFFBOARD_LOG_LEVEL", "WARNING")},
    "loggers": {
        "offboard.request": {
            "level": "INFO" if env_bool("OFFBOARD_ACCESS_LOG", not DEBUG) else "WARNING"
        }
    },
}

# Ledger: where organizations' checkpoint signing keys live (files, mode 0600), and the
# RFC 3161 time-stamping authorities asked for a token on every checkpoint (comma-separated).
OFFBOARD_KEY_DIR = Path(os.environ.get("OFFBOARD_KEY_DIR", VAR_DIR / "keys"))
# Optional: new checkpoint keys are made and used on a PKCS#11 token instead (decision 0033):
# the module (.so), the token's label, and its user PIN, read from a file (preferred) or the
# environment at each use, never stored. Docs: docs/deploy.md "Key custody".
OFFBOARD_PKCS11_MODULE = os.environ.get("OFFBOARD_PKCS11_MODULE", "")
OFFBOARD_PKCS11_TOKEN = os.environ.get("OFFBOARD_PKCS11_TOKEN", "")
OFFBOARD_PKCS11_PIN_FILE = os.environ.get("OFFBOARD_PKCS11_PIN_FILE", "")
OFFBOARD_TSA_URLS = [
    u.strip() for u in os.environ.get("OFFBOARD_TSA_URLS", "").split(",") if u.strip()
]
OFFBOARD_TSA_TIMEOUT = float(os.environ.get("OFFBOARD_TSA_TIMEOUT", "10"))
# PEM file of the TSAs' root certificates; required when OFFBOARD_TSA_URLS is set (every
# reply is verified against it before it is stored).
OFFBOARD_TSA_ROOTS = os.environ.get("OFFBOARD_TSA_ROOTS", "")
OFFBOARD_CHECKPOINT_INTERVAL = int(os.environ.get("OFFBOARD_CHECKPOINT_INTERVAL", "300"))
# An admin's request for a checkpoint is refused (429) this many seconds after the latest one
# while the log has not grown: each checkpoint queues a request to every TSA.
OFFBOARD_CHECKPOINT_REQUEST_INTERVAL = int(
    os.environ.get("OFFBOARD_CHECKPOINT_REQUEST_INTERVAL", "60")
)
# "thread": ask the TSAs right after a checkpoint commits, in the background; "off": leave it
# to `offboard worker` (tests drive it explicitly).
OFFBOARD_TSA_ON_COMMIT = os.environ.get("OFFBOARD_TSA_ON_COMMIT", "thread")

# Outbound webhooks (docs/webhooks-out.md, decision 0022). Seconds to wait for a receiver; a
# delivery given up after this many attempts; an endpoint disabled (and its admins emailed)
# after this many failed attempts in a row spanning at least this many hours. Private and
# loopback addresses are refused (SSRF) unless allowed here; with OFFBOARD_DEBUG they are.
OFFBOARD_WEBHOOK_TIMEOUT = float(os.environ.get("OFFBOARD_WEBHOOK_TIMEOUT", "10"))
OFFBOARD_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("OFFBOARD_WEBHOOK_MAX_ATTEMPTS", "30"))
OFFBOARD_WEBHOOK_DISABLE_AFTER = int(os.environ.get("OFFBOARD_WEBHOOK_DISABLE_AFTER", "10"))
OFFBOARD_WEBHOOK_DISABLE_AFTER_HOURS = float(
    os.environ.get("OFFBOARD_WEBHOOK_DISABLE_AFTER_HOURS", "24")
)
OFFBOARD_WEBHOOKS_ALLOW_PRIVATE = env_bool("OFFBOARD_WEBHOOKS_ALLOW_PRIVATE", DEBUG)

# Reminders and escalation (docs/reminders.md, decision 0023). Hours are UTC.
OFFBOARD_DIGEST_HOUR = int(os.environ.get("OFFBOARD_DIGEST_HOUR", "7"))
OFFBOARD_DEADLINE_REMINDER_DAYS = [
    int(d) for d in os.environ.get("OFFBOARD_DEADLINE_REMINDER_DAYS", "7,1").split(",") if d.strip()
]
OFFBOARD_ESCALATE_STEP_DAYS = int(os.environ.get("OFFBOARD_ESCALATE_STEP_DAYS", "3"))
OFFBOARD_ESCALATE_STEP_MANAGERS_DAYS = int(
    os.environ.get("OFFBOARD_ESCALATE_STEP_MANAGERS_DAYS", "7")
)
OFFBOARD_ESCALATE_APPROVAL_DAYS = int(os.environ.get("OFFBOARD_ESCALATE_APPROVAL_DAYS", "3"))
OFFBOARD_ESCALATION_INTERVAL = int(os.environ.get("OFFBOARD_ESCALATION_INTERVAL", "900"))
OFFBOARD_PORTAL_REMINDER_DAYS = [
    int(d) for d in os.environ.get("OFFBOARD_PORTAL_REMINDER_DAYS", "7,2").split(",") if d.strip()
]
# Off by default: whether silence after the deadline is acceptance is the contract's question
# and staff decide it (decision 0008); an organization whose contracts say so may turn it on.
OFFBOARD_PORTAL_AUTO_DEEM = env_bool("OFFBOARD_PORTAL_AUTO_DEEM", False)

# Email: the closure receipt (docs/email.md). OFFBOARD_EMAIL_BACKEND is `smtp`, `file` (one
# file per message under var/mail), `console`, `locmem` or a backend's dotted path. The default
# never sends mail in development (`file`) and never pretends to in production (`smtp`).
_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
_email_backend = os.environ.get("OFFBOARD_EMAIL_BACKEND", "file" if DEBUG else "smtp").strip()
if _email_backend not in _EMAIL_BACKENDS and "." not in _email_backend:
    raise RuntimeError(
        f"OFFBOARD_EMAIL_BACKEND={_email_backend!r}: use smtp, file, console, locmem "
        "or a backend's dotted path."
    )
EMAIL_BACKEND = _EMAIL_BACKENDS.get(_email_backend, _email_backend)
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_HOST = os.environ.get("OFFBOARD_SMTP_HOST", "localhost")
EMAIL_USE_TLS = env_bool("OFFBOARD_SMTP_STARTTLS", False)
EMAIL_USE_SSL = env_bool("OFFBOARD_SMTP_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise RuntimeError("Set OFFBOARD_SMTP_STARTTLS or OFFBOARD_SMTP_SSL, not both.")
EMAIL_PORT = int(
    os.environ.get(
        "OFFBOARD_SMTP_PORT", "465" if EMAIL_USE_SSL else "587" if EMAIL_USE_TLS else "25"
    )
)
EMAIL_HOST_USER = os.environ.get("OFFBOARD_SMTP_USER", "")
# Read from the environment only: never written to the database, a log or an error message.
EMAIL_HOST_PASSWORD = os.environ.get("OFFBOARD_SMTP_PASSWORD", "")
EMAIL_TIMEOUT = float(os.environ.get("OFFBOARD_SMTP_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("OFFBOARD_EMAIL_FROM", f"offboard@{SITE_HOST}")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# "thread": issue the certificate and send the receipt right after a closure commits, in the
# background; "off": leave it to `offboard worker` (tests drive it explicitly).
OFFBOARD_RECEIPT_ON_COMMIT = os.environ.get("OFFBOARD_RECEIPT_ON_COMMIT", "thread")

# Background jobs (docs/jobs.md, decision 0021): Django's tasks API. `database` (the default)
# keeps the queue in this database, so a job is enqueued in the transaction of the change that
# causes it; `redis` puts it on RQ queues at OFFBOARD_REDIS_URL, after commit, with the outbox
# sweep behind it. `offboard worker` runs the jobs and the periodic schedule.
OFFBOARD_JOBS_BACKEND = os.environ.get("OFFBOARD_JOBS_BACKEND", "database").strip()
OFFBOARD_REDIS_URL = os.environ.get("OFFBOARD_REDIS_URL", "redis://127.0.0.1:6379/0")
if OFFBOARD_JOBS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif OFFBOARD_JOBS_BACKEND == "redis":
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": OFFBOARD_REDIS_URL, "DEFAULT_TIMEOUT": 3600}}
    INSTALLED_APPS.append("django_rq")
else:
    raise RuntimeError(
        f"OFFBOARD_JOBS_BACKEND={OFFBOARD_JOBS_BACKEND!r}: use database (the default) or redis."
    )
# How often the outbox sweep re-drives work whose job was lost (a worker killed mid-job, a
# Redis queue emptied), in seconds.
OFFBOARD_SWEEP_INTERVAL = float(os.environ.get("OFFBOARD_SWEEP_INTERVAL", "60"))
# A claimed outbox row is left to its worker for its requests' timeouts plus this margin
# (seconds; five times it for a closure receipt); a worker killed mid-job holds it no longer.
OFFBOARD_LEASE_MARGIN = float(os.environ.get("OFFBOARD_LEASE_MARGIN", "60"))
# How often the worker looks whether a reminder job's period has come (seconds).
OFFBOARD_REMINDER_TICK = float(os.environ.get("OFFBOARD_REMINDER_TICK", "60"))
# How often the after-closure re-check of connector-revoked access runs (seconds; daily). Each
# connection's `recheck_interval_days` says how often one account is read again; a failed read
# is tried again at the next run (docs/connectors.md).
OFFBOARD_RECHECK_TICK = float(os.environ.get("OFFBOARD_RECHECK_TICK", "86400"))
