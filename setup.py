"""The compiled pieces: the fast decoder's skip path (src/vxcap/core/_skim.c), the evidence
writer's per-frame loop (src/vxcap/core/_evidence.c) and the capture start's vfork with a
parent-death signal (src/vxcap/adapters/_spawn.c; without it, `setpriv --pdeathsig` does it).

Optional: without a C compiler and Python's headers the build skips them and vxcap does the same
work in pure Python (the reference the tests hold the compiled paths to), only slower on large
captures. Everything else is declared in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("vxcap.core._skim", ["src/vxcap/core/_skim.c"], optional=True),
    Extension("vxcap.core._evidence", ["src/vxcap/core/_evidence.c"], libraries=["m"], optional=True),
    Extension("vxcap.adapters._spawn", ["src/vxcap/adapters/_spawn.c"], optional=True),
])
