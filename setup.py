"""Packages the ETRM ML platform; dependencies are pinned in requirements/lock.txt."""
from setuptools import find_packages, setup

setup(
    name="etrm-ml-platform",
    version="0.1.0",
    description="TFX pipeline, models, serving and monitoring for Energy Trading and Risk Management",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["ml", "ml.*", "pipeline", "pipeline.*", "components",
                                    "components.*", "models", "models.*", "benchmarks"]),
    py_modules=["run_local"],
    include_package_data=True,
    package_data={"ml.dashboard": ["templates/*.html", "static/*.js", "static/*.css"]},
    entry_points={"console_scripts": ["etrm=ml.cli:main"]},
)
