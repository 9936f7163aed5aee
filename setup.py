"""Maps the source folders onto one import name: ``schemas/`` installs as
``shiftright_server.schemas``, ``streams/`` as ``shiftright_server.streams``, and so on,
so the server never installs a top-level name (``schemas``, ``streams`` …) that a user's
own code or another distribution could own. Everything else is in ``pyproject.toml``."""

from setuptools import find_packages, setup

UMBRELLA = "shiftright_server"
FOLDERS = ("schemas", "producers", "streams", "sinks", "dashboard", "infra")

packages = [
    f"{UMBRELLA}.{name}" for name in find_packages(include=[f"{folder}*" for folder in FOLDERS])
]
setup(
    packages=packages,
    package_dir={f"{UMBRELLA}.{folder}": folder for folder in FOLDERS},
)
