# syntax=docker/dockerfile:1
# One image for both processes: `monomcp serve policy` and `monomcp serve front` (the
# default command). Build: docker build -t monomcp .   Run: see deploy/compose.yaml.
ARG PYTHON_VERSION=3.12
ARG UV_VERSION=0.9

# --- build: resolve the locked runtime dependencies (no dev tools) into /app/.venv --------
FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY policy_service ./policy_service
COPY mcp_front ./mcp_front
COPY monomcp_cli ./monomcp_cli
COPY demo_backend ./demo_backend
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime: the interpreter and the virtualenv, nothing else; never root --------------
FROM python:${PYTHON_VERSION}-slim-bookworm
RUN groupadd --system --gid 10001 monomcp \
 && useradd --system --uid 10001 --gid monomcp --home-dir /var/lib/monomcp --create-home \
    --shell /usr/sbin/nologin monomcp
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MONOMCP_LOG_FORMAT=json \
    MONOMCP_FRONT_LISTEN=0.0.0.0:8765 \
    MONOMCP_POLICY_LISTEN=0.0.0.0:50051
# The SQLite default lands under the working directory; production sets DATABASE_URL.
WORKDIR /var/lib/monomcp
USER 10001:10001
# 8765 front (MCP, admin REST, console, /metrics), 50051 policy gRPC, 9464 policy metrics.
EXPOSE 8765 50051 9464
ENTRYPOINT ["monomcp"]
CMD ["serve", "front"]
