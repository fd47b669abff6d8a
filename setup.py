"""Packaging for hyper: a synchronous HTTP/2 client built on the h2 state machine."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "hyper" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="hyper",
    version=VERSION,
    description="A synchronous, thread-safe HTTP/2 client for Python",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["hyper", "hyper.*"]),
    package_data={"hyper": ["py.typed"], "hyper.testing": ["certs/*.pem", "certs/*.key"]},
    install_requires=[
        # The lower bounds are the versions tools/constraints.txt pins and CI
        # tests; the fence (hyper/http20/h2_internals.py) checks any newer
        # 4.x at import and falls back to h2's public API if its internals moved.
        "h2>=4.4,<5",
        "hpack>=4.2,<5",
        "certifi",
        # HTTP/1.1 wire format (HTTP11Connection, the h2c Upgrade, proxy CONNECT):
        # a proven sans-I/O parser instead of a hand-written one.
        # 0.16 fixed lenient chunk parsing (CVE-2025-43859, request smuggling).
        "h11>=0.16,<1",
        # 1.2 added output_buffer_limit, which bounds each decompression step.
        "brotli>=1.2",
    ],
    entry_points={
        "console_scripts": ["hyper = hyper.cli:main"],
        # HTTPie loads transport plugins from this group (hyper.httpie_plugin).
        "httpie.plugins.transport.v1": ["hyper = hyper.httpie_plugin:HyperTransportPlugin"],
    },
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout",
            "trustme>=1.1",
            "hypercorn>=0.17",
            "hypothesis>=6",
            # hyper.contrib's tests drive a real requests.Session.
            "requests>=2.28",
            # The HTTPie plugin's tests run the real `http` command.
            "httpie>=3",
        ],
        "lint": ["ruff", "mypy", "types-requests"],
        # hyper.contrib.HTTP20Adapter, the requests transport adapter.
        "requests": ["requests>=2.28"],
        # hyper.httpie_plugin: HTTPie speaks HTTP/2 through HTTP20Adapter.
        "httpie": ["httpie>=3", "requests>=2.28"],
        "docs": ["sphinx>=7"],
        # python -m bench (niquests is installed by the harness itself, which
        # needs a special build of urllib3-future; see bench/README.md).
        "bench": ["trustme>=1.1", "pycurl", "httpx[http2]>=0.28,<0.29"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "License :: OSI Approved :: MIT License",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
