"""es-mesos: Elasticsearch on Apache Mesos with external volumes and recyclable node identity."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "es_framework" / "__init__.py").read_text()).group(1)

setup(
    name="es-mesos",
    version=VERSION,
    description="Elasticsearch on Apache Mesos with external volumes and recyclable node identity",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["es_framework", "es_framework.*", "strategies", "identity"]),
    package_data={
        "es_framework": ["py.typed"],
        "es_framework.api": ["ui.html"],
        "strategies": ["py.typed"],
        "identity": ["py.typed"],
    },
    # Ranges here; exact pins in requirements.txt. pymesos' http-parser dependency needs the
    # source build that scripts/setup.sh does first (see README).
    install_requires=[
        "bitarray>=3.0,<4",
        "pymesos==0.3.15",
        "kazoo>=2.9,<3",
        "requests>=2.31,<3",
        "PyYAML>=6,<7",
        "prometheus-client>=0.22,<1",  # 0.22: CONTENT_TYPE_PLAIN_0_0_4
        "cryptography>=43,<52",  # 43: x509.verification's client verifier; not_valid_after_utc (42)
        "fastapi>=0.115,<1",  # the REST API (es_framework/api/); pydantic 2 models, Starlette underneath
        "pydantic>=2.7,<3",
        "uvicorn>=0.30,<1",  # serves it (plain: h11 and asyncio, no [standard] extras)
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.6",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "mypy>=1.10",
            "import-linter>=2.10",
            "types-PyYAML",
            "schemathesis>=4.30,<5",
            "httpx2>=2.16,<3",  # Starlette's TestClient (Starlette 1.x: httpx2)
            "playwright>=1.50",
        ],
        # examples/client.py: elasticsearch-py, whose major must match the server's (an 8.x server
        # refuses a 9.x client). Exact pins in requirements-dev.txt (pip's -c requirements-dev.txt).
        "client": [
            "elasticsearch>=8,<9",
        ],
    },
    entry_points={
        "console_scripts": [
            "es-framework=es_framework.cli:main",
            "es-mesos-executor=es_framework.executor:main",
            "es-mesos-demo-es=es_framework.dev.demo_es.node:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: System :: Clustering",
    ],
)
