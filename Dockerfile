FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TAUTAN_DATABASE_URL=sqlite+aiosqlite:////data/tautan.db \
    TAUTAN_SPOOL_DIR=/data/spool
# cairo draws the dashboard's charts as PNG (CairoSVG).
RUN apt-get update && apt-get install -y --no-install-recommends libcairo2 \
    && rm -rf /var/lib/apt/lists/*
# Runs as tautan (uid 10001, gid 10001): a folder bind-mounted at /data must be theirs.
RUN groupadd --gid 10001 tautan && useradd --create-home --uid 10001 --gid 10001 tautan \
    && mkdir /data && chown tautan:tautan /data
WORKDIR /srv/tautan
# The free geo database that `tautan serve` fetches on first start (./geo) lives on the volume.
RUN ln -s /data/geo /srv/tautan/geo
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so `tautan migrate` finds alembic.ini and migrations/ beside the code; the
# runtime dependencies only, at the versions of constraints.txt (those `make` installs),
# with the client of a ClickHouse server (TAUTAN_CLICKHOUSE_URL=http(s)://…; embedded chdb,
# some 270 MB, is left out).
RUN pip install --no-cache-dir -c constraints.txt -e '.[clickhouse]'
USER tautan
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["tautan", "serve", "--host", "0.0.0.0"]
