# PolicyScope server-mode image: one image, one verb per container.
#   docker run IMAGE collector --dsn http://user:pass@clickhouse:8123/policyscope
#   docker run IMAGE worker | dashboard | migrate ...
# docker-compose.yml builds this image for the collector, worker, dashboard and migrate services.

# ---- build stage: install the project and its dependencies into a venv ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY . /src
RUN pip install . \
    && policyscope --help >/dev/null

# ---- runtime stage: the venv only, no source tree, no build tooling ----
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POLICYSCOPE_HTTP_PORT=4318 \
    POLICYSCOPE_GRPC_PORT=4317 \
    POLICYSCOPE_DASHBOARD_PORT=8501 \
    POLICYSCOPE_SPOOL_DIR=/var/lib/policyscope/spool \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# Non-root user. The spool and secrets directories exist and are owned by that user in the
# image, so a fresh named volume mounted on one inherits the ownership and the collector can
# write to it (secrets/ is 0700: the receiver token file lives there).
RUN groupadd --system --gid 10001 policyscope \
    && useradd --system --uid 10001 --gid policyscope \
        --home-dir /var/lib/policyscope --shell /usr/sbin/nologin policyscope \
    && mkdir -p /var/lib/policyscope/spool /var/lib/policyscope/secrets \
    && chown -R policyscope:policyscope /var/lib/policyscope \
    && chmod 0700 /var/lib/policyscope/secrets

COPY --from=build /opt/venv /opt/venv

# numeric, so runtimes that enforce runAsNonRoot can verify it
USER 10001:10001
WORKDIR /var/lib/policyscope

# 4317 OTLP/gRPC, 4318 OTLP/HTTP (collector), 8501 Streamlit (dashboard)
EXPOSE 4317 4318 8501

ENTRYPOINT ["policyscope"]
CMD ["--help"]
