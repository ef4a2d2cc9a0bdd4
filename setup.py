"""Package layout for setuptools: the code, plus the top-level ``resources/`` folder shipped inside
the package as ``stylestudio.resources``.

``resources/`` (direction libraries, region catalogs, the photo encoder, icons) stays at the top of
the repository, beside the scripts that made it, but a user's ``pip install .`` must carry it: a
wheel without it has no sliders, no regions and no icons. pyproject.toml cannot add a mapped
package to an automatic package search, hence this file; all other metadata is in pyproject.toml.
"""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["stylestudio", "stylestudio.*"]), "stylestudio.resources"],
    package_dir={"stylestudio.resources": "resources"},
    package_data={"stylestudio.resources": ["**/*"]},
    include_package_data=False,
)
