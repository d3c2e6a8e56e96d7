# Production image for the guidelines intranet module: one image for the web (gunicorn),
# the Celery worker, Celery beat and the one-shot `migrate` step; docker-compose.yml picks the role.
# Configuration comes from environment variables only (see intranet/settings.py).
FROM python:3.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# WeasyPrint's native libraries (Pango, HarfBuzz subsetting) and the fonts the PDFs use.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 \
        libpangoft2-1.0-0 \
        libharfbuzz-subset0 \
        fonts-dejavu-core \
        fonts-liberation2 \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged runtime user. The code stays owned by root (read-only for the app);
# only var/ (VAR_DIR) and the user's home (gunicorn's control socket) are writable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so code changes do not invalidate this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image (served by WhiteNoise). The variables here exist
# only for this RUN step: DEBUG=0 selects the manifest storage that production uses, and the
# production settings insist on a 50+ character SECRET_KEY, so a throwaway one is given.
# Nothing connects to a database during collectstatic.
RUN DEBUG=0 \
    SECRET_KEY=build-only-collectstatic-key-not-a-secret-never-used-at-runtime \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/var/media \
    && chown -R app:app /app/var

# Safe default: an image started without DEBUG is a production instance (and therefore
# refuses to start without a real SECRET_KEY). Development runs pass DEBUG=1 explicitly.
ENV DEBUG=0 \
    WEB_CONCURRENCY=3

USER app

EXPOSE 8000

# /healthz/ needs no login and no database. The request carries the first ALLOWED_HOSTS entry
# as Host (Django rejects unknown hosts) and X-Forwarded-Proto: https, so that
# SECURE_SSL_REDIRECT=1 (trusted via SECURE_PROXY_SSL_HEADER) does not answer with a redirect.
# Any HTTP error, refused connection or timeout makes python exit non-zero: unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; r.urlopen(r.Request('http://127.0.0.1:8000/healthz/', headers={'Host': h, 'X-Forwarded-Proto': 'https'}), timeout=4)"]

# Workers: WEB_CONCURRENCY (gunicorn reads it; 3 suits a 2-core host, (2 x cores) + 1 in general).
# Access log to stdout, errors to stderr; heartbeat files in memory rather than on the overlay fs.
CMD ["gunicorn", "intranet.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--access-logfile", "-", \
     "--error-logfile", "-", \
     "--worker-tmp-dir", "/dev/shm", \
     "--timeout", "60"]
