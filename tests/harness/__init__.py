"""A private Docker engine and locally built images for the tests (development tools).

No image registry is reachable from the test machines, so everything an image test needs is built
here: :mod:`es_framework.dev.docker_engine` runs a throwaway ``dockerd`` for the session,
:mod:`tests.harness.images` builds stand-ins for the official Elasticsearch image and for
``python:3.11-slim`` from a debootstrap'd Debian, and :mod:`tests.harness.docker_fixtures` exposes
both as pytest fixtures.
"""
