# KeepRouter gateway image: python slim, non-root, HEALTHCHECK on /health/live.
# Build: docker build -t keeprouter .   (not built on the development machine: it has no Docker engine)
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY keeprouter ./keeprouter
RUN pip install --no-cache-dir --prefix=/install '.[otel]'

FROM python:3.12-slim
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/keeprouter --create-home keeprouter
USER keeprouter
WORKDIR /var/lib/keeprouter
ENV PYTHONUNBUFFERED=1 \
    KEEPROUTER_SHUTDOWN_SECONDS=30 \
    KEEPROUTER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2).status != 200)"
# exec form: the gateway is PID 1 and receives SIGTERM itself (graceful drain)
ENTRYPOINT ["keeprouter", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--workers", "2"]
