FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 INGEST_SEEDS_DIR=/app/seeds INGEST_DATA_DIR=/data
COPY pyproject.toml README.md ./
COPY ingest ./ingest
COPY workers ./workers
COPY seeds ./seeds
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir .
RUN useradd --create-home ingest && mkdir -p /data && chown ingest /data
USER ingest
ENTRYPOINT ["ingest"]
CMD ["worker"]
