"""Settings for the annotation platform, read from the environment.

Without DATABASE_URL the platform runs on an embedded SQLite file under var/;
without REDIS_URL Celery uses kombu's filesystem transport, so the demo runs
real background tasks with no server process. Every variable is listed in
deploy/.env.example.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from annotate.env import database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set DEBUG=1 for local development).")
    SECRET_KEY = "insecure-dev-only-key-never-used-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotate.catalog",
    "annotate.labeling",
    "annotate.onboarding",
    "annotate.agreement",
    "annotate.exports",
    "annotate.people",
    "rm_service",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After authentication: a password staff chose must be changed first (annotate/people/middleware.py).
    "annotate.people.middleware.PasswordChangeRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "annotate.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
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

# --- Database -------------------------------------------------------------
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    # Seconds a connection is reused across requests (0 closes it after each request).
    DATABASES = {
        "default": database_from_url(
            _database_url,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            # An unreachable database fails a request (and /healthz) quickly instead of hanging.
            connect_timeout=env_int("DATABASE_CONNECT_TIMEOUT_S", 2, minimum=1),
        )
    }
    # Server-side parameters and prepared statements: a statement run 5 times on a connection is planned once
    # (planning the hot joins cost PostgreSQL more than running them; bench/vote_submit.py). Turn it off
    # behind a pooler in transaction mode (e.g. pgbouncer < 1.21), where a prepared statement can't follow.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True) and str(DATABASES["default"]["ENGINE"]).endswith("postgresql"):
        DATABASES["default"]["OPTIONS"].update({"server_side_binding": True, "prepare_threshold": 5})  # type: ignore[attr-defined]
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The worker and the web server share the file: wait instead of failing on a lock.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Audio is never served from MEDIA_URL directly: it goes through a permission-checked view.
MEDIA_URL = "/media-not-public/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# When set (e.g. "/protected-media/"), audio views answer with X-Accel-Redirect and nginx streams the bytes.
AUDIO_ACCEL_REDIRECT_PREFIX = env_str("AUDIO_ACCEL_REDIRECT_PREFIX", "")
EXPORT_ROOT = Path(env_str("EXPORT_ROOT", str(VAR_DIR / "exports")))
# A running export with no progress for this long lost its worker and is marked failed.
EXPORT_STALE_AFTER_S = env_int("EXPORT_STALE_AFTER_S", 900, minimum=30)
RM_ROOT = Path(env_str("RM_ROOT", str(VAR_DIR / "rm")))
RM_CACHE_DIR = Path(env_str("RM_CACHE_DIR", str(RM_ROOT / "embeddings")))
# The only folders whose files staff may name as training data, dataset roots or checkpoints.
RM_DATA_ROOTS = env_list("RM_DATA_ROOTS", [str(EXPORT_ROOT), str(RM_ROOT), str(VAR_DIR / "datasets")])

# --- Upload limits (scoring API and admin) --------------------------------
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
UPLOAD_MAX_SECONDS = env_float("UPLOAD_MAX_SECONDS", 600.0, minimum=1.0)
# Shortest audio the scoring API accepts: a fraction of a second carries nothing to judge.
UPLOAD_MIN_SECONDS = env_float("UPLOAD_MIN_SECONDS", 1.0, minimum=0.0)
if UPLOAD_MIN_SECONDS > UPLOAD_MAX_SECONDS:
    raise ImproperlyConfigured("UPLOAD_MIN_SECONDS must not exceed UPLOAD_MAX_SECONDS.")
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Security -------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_FAILURE_VIEW = "annotate.views.csrf_failure"  # JSON on /api/ paths
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HSTS and the HTTPS redirect only make sense when TLS terminates in front of us; /healthz stays
# reachable over plain HTTP for the load balancer and compose health checks.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if BEHIND_TLS_PROXY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# The header's "preload" token only allows submitting the domain to the browsers' list, which stays
# the operator's decision; set SECURE_HSTS_PRELOAD=0 if the domain must never be preloaded.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Sent on every response by annotate.middleware.SecurityHeadersMiddleware. The pages load scripts,
# styles and media from this origin only and contain no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=(), interest-cohort=()"
)

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "annotate.people.authentication.ScopedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies are parsed with a nesting limit, so a deeply nested body is a 400, not a crash. JSON only:
    # bodies are nested (a vote's listened intervals), which forms can't carry; the scoring API adds multipart
    # for uploads itself. Another media type is a 415.
    "DEFAULT_PARSER_CLASSES": ["annotate.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # One JSON error shape for every API error (annotate/errors.py).
    "EXCEPTION_HANDLER": "annotate.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "score": env_str("SCORE_RATE_LIMIT", "120/min"),
        "user": env_str("API_RATE_LIMIT", "1200/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CMI annotation platform API",
    "DESCRIPTION": "Annotation, agreement, exports and reward-model scoring.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package's static files: /api/docs/ works offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would otherwise send the schema URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Both questions answer with a displayed side; one schema name for that choice set.
    "ENUM_NAME_OVERRIDES": {
        "DisplayedSideEnum": ["A", "B"],
        "DisplayedAnswerEnum": ["A", "B", "tie"],
        "CanonicalSideEnum": ["a", "b"],
        # A stored answer in canonical orientation: clip_a, clip_b or no preference (adjudication, dispute votes).
        "CanonicalAnswerEnum": ["a", "b", "t"],
        "ScoringJobStatusEnum": "rm_service.models.JobStatus",
        "CampaignStatusEnum": "annotate.catalog.models.Campaign.Status",
        # Exports and imports: queued -> running -> succeeded | failed.
        "BackgroundStatusEnum": "annotate.catalog.models.CampaignImport.Status",
    },
    # Every operation documents the error statuses any API path can answer, with the one Error shape.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotate.errors.document_error_responses",
    ],
}
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32, minimum=4)

# --- Cache (rate limits, debouncing) --------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}.")
# Seconds a web request waits on any one Redis round trip (cache, publishing a task): a down or frozen
# Redis makes the request fail fast, and answer 503 where it needs Redis, instead of hanging. Workers
# keep Celery's own connection settings (see annotate/broker.py).
REDIS_TIMEOUT_S = env_float("REDIS_TIMEOUT_S", 1.0, minimum=0.1)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------
CELERY_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        # Above the longest task we run; tasks are acked early anyway (see below).
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60),
        # A worker on "rm,rm-batch" always takes an interactive scoring request before batch work.
        "queue_order_strategy": "priority",
    }
else:
    # kombu's filesystem transport: a real broker with no server, for the embedded demo.
    for sub in ("queue", "processed", "results", "control"):
        (CELERY_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        # Exchange bindings; kombu's default is a "control" folder in the working directory.
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_DIR / 'results'}"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Periodic tasks, for a ``celery -A annotate beat`` process.
CELERY_BEAT_SCHEDULE = {
    "labeling-reclaim-expired": {
        "task": "annotate.labeling.reclaim_expired",
        "schedule": float(env_int("ASSIGNMENT_RECLAIM_INTERVAL_S", 60, minimum=5)),
        "options": {"queue": "default", "expires": 55},
    },
}
CELERY_TASK_ROUTES = {"rm_service.tasks.*": {"queue": "rm"}}
# Early ack + prefetch 1: a long task is never redelivered while it runs; the job row in the
# database is the source of truth and tasks claim their row before working (idempotent).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# --- Import limits ----------------------------------------------------------------
# Longest prompt and lyrics a manifest row may carry; longer rows are refused with their line number.
IMPORT_PROMPT_MAX_CHARS = env_int("IMPORT_PROMPT_MAX_CHARS", 4_000, minimum=1)
IMPORT_LYRICS_MAX_CHARS = env_int("IMPORT_LYRICS_MAX_CHARS", 20_000, minimum=1)
# Imports from the browser: an uploaded manifest plus a zip/tar of its audio, staged here until a worker imports it.
IMPORT_WORK_ROOT = Path(env_str("IMPORT_WORK_ROOT", "") or VAR_DIR / "imports")
IMPORT_MANIFEST_MAX_BYTES = env_int("IMPORT_MANIFEST_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
IMPORT_ARCHIVE_MAX_BYTES = env_int("IMPORT_ARCHIVE_MAX_BYTES", 2 * 1024**3, minimum=1)
# Unpacking limits (zip bombs): total bytes once unpacked, members, and the unpacked/packed ratio of any
# member over 1 MiB (audio barely compresses; a bomb compresses by a factor of hundreds or more).
IMPORT_ARCHIVE_MAX_UNPACKED_BYTES = env_int("IMPORT_ARCHIVE_MAX_UNPACKED_BYTES", 8 * 1024**3, minimum=1)
IMPORT_ARCHIVE_MAX_MEMBERS = env_int("IMPORT_ARCHIVE_MAX_MEMBERS", 50_000, minimum=1)
IMPORT_ARCHIVE_MAX_RATIO = env_float("IMPORT_ARCHIVE_MAX_RATIO", 100.0, minimum=1.0)
# Server folders staff may import from (manifest.jsonl plus audio, e.g. a mounted dataset); empty: uploads only.
IMPORT_SERVER_ROOTS = env_list("IMPORT_SERVER_ROOTS", [])
# A running import with no progress for this long lost its worker and is marked failed.
IMPORT_STALE_AFTER_S = env_int("IMPORT_STALE_AFTER_S", 900, minimum=30)

# --- Labeling defaults ------------------------------------------------------
ASSIGNMENT_TTL_MINUTES = env_int("ASSIGNMENT_TTL_MINUTES", 20, minimum=1)
# How long an annotator's invitation link (and a password-reset link) stays valid.
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72, minimum=1)
PASSWORD_RESET_TIMEOUT = INVITATION_TTL_HOURS * 3600
# Password-reset mail: printed to the console unless a real backend is configured.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cmi-annotate@localhost")

# --- Agreement ----------------------------------------------------------------
# Campaigns with more votes than this are served from a stored snapshot refreshed by Celery.
AGREEMENT_LIVE_MAX_VOTES = env_int("AGREEMENT_LIVE_MAX_VOTES", 50_000, minimum=0)
AGREEMENT_SNAPSHOT_DEBOUNCE_SECONDS = env_int("AGREEMENT_SNAPSHOT_DEBOUNCE_SECONDS", 30, minimum=1)

# --- Reward-model service -----------------------------------------------------
# "cpu", "cuda" or "cuda:N"; empty = CUDA when the worker sees a GPU, else CPU (read by rm_service.worker).
RM_DEVICE = env_str("RM_DEVICE", "")
# Scoring requests up to this many items wait for the worker (up to the timeout); larger ones get a 202.
RM_SCORE_SYNC_MAX_ITEMS = env_int("RM_SCORE_SYNC_MAX_ITEMS", 16, minimum=0)
RM_SCORE_SYNC_TIMEOUT_S = env_float("RM_SCORE_SYNC_TIMEOUT_S", 30.0, minimum=0.1)
# The batching scoring server (rm_service/serving.py, a thread of every rm worker; needs Redis): small
# waited-on score/rank requests go through a Redis list instead of Celery, and concurrent requests are
# scored in one forward pass. It waits up to RM_SCORE_BATCH_WAIT_MS for more requests after the first,
# and takes at most RM_SCORE_BATCH_MAX_ITEMS items per pass. Off (or without Redis): the Celery path.
RM_SCORE_BATCHING = env_bool("RM_SCORE_BATCHING", True)
RM_SCORE_BATCH_WAIT_MS = env_float("RM_SCORE_BATCH_WAIT_MS", 2.0, minimum=0.0)
RM_SCORE_BATCH_MAX_ITEMS = env_int("RM_SCORE_BATCH_MAX_ITEMS", 64, minimum=1)
# A running job whose worker heartbeat is older than this is marked failed (resumable if checkpointed).
RM_STALE_AFTER_S = env_float("RM_STALE_AFTER_S", 120.0, minimum=5.0)
# Cache key the rm workers refresh to say they are alive; give deployments that share one Redis their own.
RM_WORKER_HEARTBEAT_KEY = env_str("RM_WORKER_HEARTBEAT_KEY", "rm_service:rm-worker-alive")

# --- Logging --------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
