"""Examples of using an es-mesos cluster (run them as scripts, or import them in tests)."""
