"""pytest fixtures for the private Docker engine and the locally built images (development tools).

``docker_engine`` is one engine for the whole session (with pytest-xdist, the tests that use it run
in one worker: see tests/conftest.py). It skips the tests that use it when the
engine cannot run here (no ``dockerd``/``debootstrap``, not root), unless ``CI`` is set: then they
fail, as the ZooKeeper tests do. The image fixtures build lazily, once per session, on that engine
(see :mod:`tests.harness.images`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from es_framework.dev.docker_engine import DockerEngine, Progress, docker_problem
from es_framework.dev.zookeeper import in_ci
from tests.harness.images import ImageBuilder


@pytest.fixture(scope="session")
def docker_engine(progress: Progress) -> Iterator[DockerEngine]:
    """A private ``dockerd`` for the session (log: ``<engine.root>/dockerd.log``); it reports its start,
    its image builds and its teardown through ``progress`` (tests/conftest.py)."""
    problem = docker_problem()
    if problem:
        if in_ci():
            pytest.fail(f"{problem} (CI is set: the Docker tests must run)", pytrace=False)
        pytest.skip(problem)
    engine = DockerEngine(progress=progress)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def docker_images(docker_engine: DockerEngine) -> ImageBuilder:
    """Builds (once each, on demand) the stand-in bases and the production images."""
    return ImageBuilder(docker_engine)


@pytest.fixture(scope="session")
def standin_image(docker_images: ImageBuilder) -> Callable[[int], str]:
    """``standin_image(major)`` -> the tag of the stand-in Elasticsearch image for 7 or 8, built on first use."""
    return docker_images.standin


@pytest.fixture(scope="session")
def executor_image_for(docker_images: ImageBuilder) -> Callable[[int], str]:
    """``executor_image_for(major)`` -> the tag of ``docker/executor`` built FROM that stand-in."""
    return docker_images.executor


@pytest.fixture(scope="session")
def executor_image(executor_image_for: Callable[[int], str]) -> str:
    """``docker/executor`` built FROM the stand-in for Elasticsearch 8."""
    return executor_image_for(8)


@pytest.fixture(scope="session")
def scheduler_image(docker_images: ImageBuilder) -> str:
    """``docker/scheduler`` built FROM the local python builder stand-in."""
    return docker_images.scheduler()
