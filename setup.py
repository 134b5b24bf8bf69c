"""Declares fastinput's C extensions; every other setting lives in pyproject.toml.

``fastinput.fused_ops._jpeg`` links libjpeg-turbo. On Linux x86-64 with Python 3.12 or
newer, pip brings it as a build requirement (``comma-deps-libjpeg``: libjpeg-turbo 3.1's
headers and a static library, linked into the extension), so nothing else is needed;
elsewhere the system's (Debian/Ubuntu: ``apt-get install libjpeg62-turbo-dev`` or
``libjpeg-turbo8-dev``). Without either the build of the extension fails, the install still
succeeds (``optional=True``), and the image kernels fall back to TensorFlow's, correct and
slower, saying so once.

``fastinput.readers._records`` (TFRecord framing and CRC32C without the GIL) needs
only a C compiler; if it does not build, TFRecord reading falls back to a Python
loop, correct and slower.

``fastinput.ops._mixing`` (the mixing ops' layout step and draws) needs a C compiler and numpy's
headers; without it the mix lays out its elements and draws with numpy, correct and slower.

``fastinput.ops._shuffle`` (a run of the buffered shuffle's draws in one call) needs only a C compiler; without it
each draw is a few bytecodes of Python, correct and slower.

``fastinput.ops._exchange`` (the row shuffle's exchange plan) needs only a C compiler; without it the
shuffle over rows works the plan out with numpy, correct and slower.

``fastinput.readers._nulls`` (zeroing a Parquet column's null slots in place) needs only a C compiler; without it
numpy does it, correct and slower.

``fastinput.readers._binary`` (the offsets of a batch's arrow string columns in one call, for Parquet's
``string_type="packed"``) needs only a C compiler; without it each column is packed with numpy, correct and slower.

``fastinput.readers._example`` (the Example parser's fast path) needs a C compiler
and numpy's headers (a build requirement in pyproject.toml); without it
``parse_example`` uses TensorFlow's kernel alone, correct and slower.
"""

import importlib.util

import numpy
from setuptools import Extension, setup


def libjpeg_turbo() -> dict:
    """How to link libjpeg-turbo: the static build a Python package brought (``comma-deps-libjpeg``, see the
    build requirements) if it is there, else the system's ``-ljpeg``."""
    if importlib.util.find_spec("libjpeg") is not None:
        import libjpeg

        return {"include_dirs": [libjpeg.INCLUDE_DIR], "extra_objects": [f"{libjpeg.LIB_DIR}/libjpeg.a"]}
    return {"libraries": ["jpeg"]}


def _with_numpy(options: dict) -> dict:
    """``options`` with numpy's headers added to its include directories."""
    return {**options, "include_dirs": [*options.get("include_dirs", []), numpy.get_include()]}


WARNINGS_AND_SPEED = ["-O3", "-std=c99", "-Wall", "-Wextra"]


def c_extension(name: str, extra_compile_args: tuple[str, ...] = (), **options) -> Extension:
    """The optional extension ``name`` (a dotted module name) built from the C file of that path."""
    return Extension(name, sources=[name.replace(".", "/") + ".c"],
                     extra_compile_args=WARNINGS_AND_SPEED + list(extra_compile_args), optional=True, **options)


setup(
    ext_modules=[
        # draws its random crop windows from numpy's bit generators (numpy/random/bitgen.h)
        c_extension("fastinput.fused_ops._jpeg", ("-ffp-contract=off",), **_with_numpy(libjpeg_turbo())),
        c_extension("fastinput.readers._records"),
        c_extension("fastinput.readers._nulls"),
        c_extension("fastinput.readers._binary"),
        # draws from numpy's bit generators (numpy/random/bitgen.h)
        c_extension("fastinput.ops._mixing", depends=["fastinput/ops/int64_buffer.h"],
                    include_dirs=[numpy.get_include()]),
        c_extension("fastinput.ops._exchange", depends=["fastinput/ops/int64_buffer.h"]),
        c_extension("fastinput.ops._shuffle"),
        # builds its outputs as numpy arrays directly
        c_extension("fastinput.readers._example", include_dirs=[numpy.get_include()]),
    ]
)
