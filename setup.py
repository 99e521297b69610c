"""The one compiled piece: the fast decoder's skip path (src/vxcap/core/_skim.c).

Optional: without a C compiler and Python's headers the build skips it and vxcap reads every
frame in pure Python (the reference the tests hold the compiled path to), only slower on a busy
node's capture. Everything else is declared in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("vxcap.core._skim", ["src/vxcap/core/_skim.c"], optional=True)])
