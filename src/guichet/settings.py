"""Django settings for Guichet, read from the environment.

Environment variables (see ``.env.example``):

- ``DATABASE_URL``: database; SQLite in ``GUICHET_DATA_DIR`` when unset.
- ``SECRET_KEY``: required when ``DEBUG`` is off.
- ``DEBUG``: ``1``/``true`` to enable debug mode (off by default).
- ``ALLOWED_HOSTS``: comma-separated host names.
- ``GUICHET_DATA_DIR``: where SQLite, uploaded files and exports live (default ``./var``).
- ``GUICHET_PUBLIC_URL``: absolute base URL of the public site, printed on posters and e-mails.
- ``EMAIL_URL``-style settings are plain Django ones: ``EMAIL_HOST``, ``EMAIL_PORT``, ...
- ``SECURE_COOKIES``: HTTPS mode (default on unless ``DEBUG``): secure cookies, HTTPS redirect,
  HSTS. ``SECURE_HSTS_SECONDS``, ``SECURE_SSL_REDIRECT``, ``GUICHET_BEHIND_PROXY`` refine it.
- ``GUICHET_FIELD_KEY_FILE`` (or ``GUICHET_FIELD_KEY``): the key of the fields encrypted at rest.
- ``AXES_FAILURE_LIMIT``, ``AXES_COOLOFF_MINUTES``: login lockout (see ``docs/security.md``).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("GUICHET_DATA_DIR", Path.cwd() / "var")).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or "pytest" in sys.modules or env_bool("GUICHET_INSECURE_DEV_KEY", False):
        SECRET_KEY = "dev-only-insecure-key-never-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment (or DEBUG=1 for development)."
        )

# Field encryption at rest (docs/security.md, "Encryption at rest"): the key comes from
# GUICHET_FIELD_KEY_FILE or GUICHET_FIELD_KEY, read when used (guichet.common.crypto). Without
# one, development and tests use a public insecure key, which `guichet check --deploy` refuses.
GUICHET_FIELD_KEY_INSECURE_DEV = DEBUG or "pytest" in sys.modules or env_bool("GUICHET_INSECURE_DEV_KEY", False)

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
GUICHET_PUBLIC_URL = os.environ.get("GUICHET_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # serves the API docs page (Swagger UI) from our static files, not a CDN
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "guichet.common",
    "guichet.journal",
    "guichet.accounts",
    "guichet.catalog",
    "guichet.status",
    "guichet.bookings",
    "guichet.billing",
    "guichet.water",
    "guichet.recovery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the user read together with the session (guichet.accounts.sessions).
    "guichet.accounts.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Staff pages need a session that passed the second factor (docs/security.md).
    "guichet.accounts.middleware.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "guichet.urls"
WSGI_APPLICATION = "guichet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "guichet.status.context_processors.incident_banner",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
DATA_DIR.mkdir(parents=True, exist_ok=True)
(DATA_DIR / "staticfiles").mkdir(exist_ok=True)
_default_sqlite = f"sqlite:///{DATA_DIR / 'guichet.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _default_sqlite), conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60"))
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A correct embedded default: WAL, writers take the lock up front, a busy timeout.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=20000;"
        ),
    }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("GUICHET_TEST_SQLITE")
else:
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    if os.environ.get("GUICHET_DB_PREPARED", "1").strip().lower() not in {"0", "false", "no", "off"}:
        # Parameters bound by the server, and statements prepared once per connection after
        # their fifth use: PostgreSQL no longer parses and plans the same few statements for
        # every request (a fifth less of its CPU in the opening-day rush, docs/benchmarks.md).
        # Off (GUICHET_DB_PREPARED=0) behind a pooler in transaction mode that cannot keep
        # prepared statements (docs/operations.md).
        _pg_options.update(server_side_binding=True, prepare_threshold=5)
    if os.environ.get("GUICHET_DB_POOL"):
        # A connection pool per process (psycopg_pool, through Django): a request holds a
        # connection only while it uses it, and gives it back while it waits for its answer, so
        # that a process can keep many more requests waiting than it has connections (the
        # gevent workers of docs/operations.md, "Booking under load").
        _pool = os.environ["GUICHET_DB_POOL"].strip()
        # At least 3: a process's receipt and drainer threads take theirs from it too.
        if not _pool.isdigit() or not 3 <= int(_pool) <= 1000:
            raise ImproperlyConfigured(
                f"GUICHET_DB_POOL must be a number of connections per process, 3 to 1000 (got {_pool!r})"
            )
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _pg_options["pool"] = {"min_size": 2, "max_size": int(_pool), "timeout": 10}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # counts failures, refuses while locked out
    # Django's ModelBackend, reading the user of each signed-in request with one plain SQL statement.
    "guichet.accounts.backends.ModelBackend",
]
# Argon2id first: new and changed passwords are hashed with it; older hashes are upgraded at the
# next sign-in. The test run alone puts a fast hasher first (thousands of accounts are created);
# tests/accounts/test_passwords.py checks the production list and that a real sign-in upgrades.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
if "pytest" in sys.modules and not env_bool("GUICHET_TEST_REAL_HASHER", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:after-login"
LOGOUT_REDIRECT_URL = "home"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24  # reset and e-mail verification links: one day
OTP_TOTP_ISSUER = os.environ.get("GUICHET_OTP_ISSUER", "Guichet")

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed attempts for one account name
# from one address, that pair is refused for AXES_COOLOFF_MINUTES. The answer is the same
# whether the account exists or not. Only failures are stored (no log of every sign-in).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "guichet.accounts.views.locked_out"
AXES_IPWARE_PROXY_COUNT = int(os.environ["GUICHET_PROXY_COUNT"]) if os.environ.get("GUICHET_PROXY_COUNT") else None

# --- Internationalisation: French first, English second; rules in Paris time ----------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("GUICHET_DISPLAY_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True
GUICHET_RULES_TIME_ZONE = "Europe/Paris"

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the site-wide guichet/site.css
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
STORAGES = {
    # Uploaded files (justifications) and kept PDFs are encrypted with the field key; never served from MEDIA_URL.
    "default": {"BACKEND": "guichet.common.crypto.EncryptedFileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Background tasks (django-tasks, database backend) ---------------------------------------
TASKS = {
    "default": {
        "BACKEND": os.environ.get("GUICHET_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Billing: who issues the invoices, how they are paid (docs/guide-finance.md, "Invoice PDFs") ---
GUICHET_BILLING_ISSUERS_FILE = os.environ.get("GUICHET_BILLING_ISSUERS_FILE", "")

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Guichet <ne-pas-repondre@guichet.invalid>")

# --- Security (docs/security.md) -------------------------------------------------------------
# One switch, SECURE_COOKIES (on unless DEBUG), says the site is served over HTTPS: secure
# cookies, redirect to HTTPS, HSTS. bin/demo turns it off for plain http on 127.0.0.1.
HTTPS = env_bool("SECURE_COOKIES", not DEBUG)
# Database sessions (revoked at sign-out, in every process), read with one plain SQL statement.
SESSION_ENGINE = "guichet.accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = False  # the API's HTMX/fetch writes read it (X-CSRFToken)
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS and "pytest" not in sys.modules)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a local probe over plain http
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600) if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
if env_bool("GUICHET_BEHIND_PROXY", False):
    # The reverse proxy terminates TLS and says so; only set this when it strips the header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (django-csp 4): our own origin only, no inline script or style,
# no 'unsafe-inline', no 'unsafe-eval'. Templates load every script and style from static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Logging: no personal data, ever (see docs/operations.md) -------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Request paths can carry personal data (file numbers, signed links): logged as their route.
    # Database errors quote the values they refused: logged tracebacks keep the error's class only.
    "filters": {"withhold_paths": {"()": "guichet.common.logfilters.WithholdPaths"},
                "withhold_db_values": {"()": "guichet.common.logfilters.WithholdDatabaseValues"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["withhold_db_values"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # WeasyPrint reports every layout step at INFO: only its warnings are worth reading.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # django-axes names the account and address of a failed sign-in at INFO/WARNING.
        "axes": {"level": "ERROR"},
        "django.request": {"filters": ["withhold_paths", "withhold_db_values"]},
        "django.security": {"filters": ["withhold_paths"]},
        "django.security.csrf": {"filters": ["withhold_paths"]},
        "django.server": {"filters": ["withhold_paths"]},
    },
}
