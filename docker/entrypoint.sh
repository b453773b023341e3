#!/usr/bin/env bash
# Entry point of the fleet-etl image. Spark on Kubernetes (spark-submit, or the Spark
# operator, which calls it) starts driver pods with the arguments `driver <spark-submit
# arguments>` and executor pods with `executor`, passing the executor's settings in SPARK_*
# environment variables; anything else is run as a command (`etl --config ... status`).
set -euo pipefail

role="${1:-}"
[ $# -gt 0 ] && shift

case "$role" in
  driver)
    # the driver runs spark-submit in client mode inside its pod, bound to the pod's IP
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client \
      "$@"
    ;;
  executor)
    # SPARK_JAVA_OPT_<n> hold the executor's JVM options, one per variable, in order n
    java_opts=()
    while IFS= read -r name; do
      java_opts+=("${!name}")
    done < <(compgen -e | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n)
    exec java "${java_opts[@]}" \
      -Xms"${SPARK_EXECUTOR_MEMORY}" -Xmx"${SPARK_EXECUTOR_MEMORY}" \
      -cp "${SPARK_HOME}/conf:${SPARK_HOME}/jars/*${SPARK_EXTRA_CLASSPATH:+:$SPARK_EXTRA_CLASSPATH}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL}" \
      --executor-id "${SPARK_EXECUTOR_ID}" \
      --cores "${SPARK_EXECUTOR_CORES}" \
      --app-id "${SPARK_APPLICATION_ID}" \
      --hostname "${SPARK_EXECUTOR_POD_IP}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  "")
    echo "usage: driver|executor|<command> [args...]" >&2
    exit 64
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
