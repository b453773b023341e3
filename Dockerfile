# syntax=docker/dockerfile:1
# The Spark image of fleet-etl, for the Spark-on-Kubernetes operator (driver and executors)
# and for Kubeflow steps: Python 3.11 with the exact pins of requirements.lock (pyspark
# 4.2.0 brings Spark itself), OpenJDK 17, our Maven-pinned jars on Spark's classpath, our
# wheel, the spark-submit entry points in jobs/, a non-root user. Build: `make image`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17

# 1. The JVM dependencies, from the same pinned list as `make setup` (jvm/spark/pom.xml):
#    resolved at build time, never when Spark starts.
FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY jvm/spark/pom.xml jvm/spark/pom.xml
RUN mvn -q -B -f jvm/spark/pom.xml dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory=/build/jars

# 2. Our wheel.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY etl ./etl
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# 3. The runtime.
FROM ${PYTHON_IMAGE}
ARG SPARK_UID=185
RUN apt-get update \
 && apt-get install -y --no-install-recommends default-jre-headless tini procps \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /tmp/requirements.lock
COPY --from=wheel /dist/ /tmp/dist/
# the wheel's runtime dependencies only, at the versions the tests ran with (-c: the lock
# constrains, it does not add its dev tools)
RUN pip install --no-cache-dir -c /tmp/requirements.lock /tmp/dist/*.whl \
 && rm -rf /tmp/dist /tmp/requirements.lock
ENV JAVA_HOME=/usr/lib/jvm/default-java \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python \
    ETL_JARS_ON_CLASSPATH=1
ENV PATH=${SPARK_HOME}/bin:${PATH} \
    ETL_SPARK_DEFAULTS=${SPARK_HOME}/conf/spark-defaults.conf
COPY --from=jars /build/jars/ ${SPARK_HOME}/jars/
COPY spark-defaults.conf ${SPARK_HOME}/conf/spark-defaults.conf
COPY jobs/ /opt/fleet-etl/jobs/
COPY docker/entrypoint.sh /opt/entrypoint.sh
RUN useradd --uid ${SPARK_UID} --gid 0 --home-dir /opt/fleet-etl --no-create-home spark \
 && chmod 0755 /opt/entrypoint.sh \
 && chown -R ${SPARK_UID}:0 /opt/fleet-etl && chmod -R g+w /opt/fleet-etl
WORKDIR /opt/fleet-etl
USER ${SPARK_UID}
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/entrypoint.sh"]
