"""Build hooks that pyproject.toml cannot express: hublink's optional native Dice kernel.

Everything else about the distribution is in pyproject.toml. The kernel is a small C
extension built with the machine's compiler when hublink is installed; ``optional=True``
lets the install go on without it where no compiler is found, and the coordinator then
compares with anonlink's kernel (``coordinator.core.kernel``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("coordinator.core._dice", ["coordinator/core/_dice.c"], optional=True),
    ]
)
