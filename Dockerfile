FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TAUTAN_DATABASE_URL=sqlite+aiosqlite:////data/tautan.db \
    TAUTAN_SPOOL_DIR=/data/spool
RUN useradd --create-home --uid 10001 tautan && mkdir /data && chown tautan /data
WORKDIR /srv/tautan
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so `tautan migrate` finds alembic.ini and migrations/ beside the code.
RUN pip install --no-cache-dir -e .
USER tautan
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["tautan", "serve", "--host", "0.0.0.0"]
