# syntax=docker/dockerfile:1
# Airflow 3.3 with claims-audit installed from uv.lock. Built by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

# Mount points exist in the image so that fresh named volumes start out owned by
# the airflow user; group 0 gets the same rights for arbitrary UIDs (AIRFLOW_UID).
USER root
RUN mkdir -p /opt/claims-audit/app /opt/claims-audit/landing /opt/claims-audit/db /opt/claims-audit/out \
    && chown -R airflow:0 /opt/claims-audit \
    && chmod -R g+rwX /opt/claims-audit
USER airflow

WORKDIR /opt/claims-audit/app

# Third-party dependencies come from the lock alone, in their own layer, so they
# are rebuilt only when uv.lock changes. Airflow's own distributions are left to
# the base image (same version as the lock), and pinning apache-airflow stops
# pip from moving it.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ./
RUN uv export --frozen --no-dev --no-hashes --no-emit-project \
        --no-emit-package apache-airflow \
        --no-emit-package apache-airflow-core \
        --no-emit-package apache-airflow-task-sdk \
        --output-file /tmp/requirements.lock.txt \
    && pip install --no-cache-dir --compile \
        "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.lock.txt \
    && rm /tmp/requirements.lock.txt

# The project itself, without dependencies (all installed above). Editable, so
# that pipelines/ finds sql/, the policy packs and their suites beside it as in a checkout.
COPY --chown=airflow:0 pipelines/ ./pipelines/
COPY --chown=airflow:0 sql/ ./sql/
COPY --chown=airflow:0 policies/ ./policies/
COPY --chown=airflow:0 expectations/ ./expectations/
RUN pip install --no-cache-dir --no-deps --editable . \
    && python -m compileall -q pipelines \
    && pip check

# Baked-in DAGs for running the image on its own; docker-compose.yml mounts ./dags over them.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
RUN python -m compileall -q /opt/airflow/dags

ENV CLAIMS_AUDIT_LANDING=/opt/claims-audit/landing \
    CLAIMS_AUDIT_DB=/opt/claims-audit/db/claims_audit.duckdb \
    CLAIMS_AUDIT_OUT=/opt/claims-audit/out

WORKDIR /opt/airflow
