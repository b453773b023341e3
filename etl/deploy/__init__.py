"""Production path: Kubernetes manifests and the Kubeflow pipeline, generated from the config.

Nothing here is copied by hand: ``python -m etl.deploy manifests`` writes the
ConfigMap, the accounts and roles, one ``SparkApplication`` per job and the
``ScheduledSparkApplication`` of the recurring tick from the ``kubernetes:``
section of a pipeline config (``etl.deploy.manifests``), and ``python -m
etl.deploy pipeline`` compiles the Kubeflow Pipelines v2 pipeline whose steps
submit those very SparkApplications (``etl.deploy.pipeline``). ``make pipeline``
runs both for ``conf/prod.example.yaml``.
"""
