"""`make integration`: the compose stack's topology, live on one machine without Docker.

Postgres, Redis, the Airflow api-server, scheduler, dag-processor, triggerer and two Celery
workers, an S3 drop zone (moto's server) and an SFTP drop zone (OpenSSH), all in a throwaway
folder on loopback ports; the nightly DAG driven through the REST API alone and compared with
the CLI. `python -m integration` runs it (docs/deploy.md, "Run the whole stack without Docker").
"""
