"""es-mesos: Elasticsearch on Apache Mesos with external volumes and recyclable node identity."""

__version__ = "0.1.0"
