"""Fuzzing fastinput's native code and its parsers: TFRecord framing, the Example parser, the JPEG kernels, mixing
TFRecord files, the shuffle's draws.

Each target (``target_*.py``) makes inputs from a seed (valid data, unusual
but valid encodings, and damaged ones from ``mutate``), runs fastinput on
each and, where TensorFlow defines the answer, TensorFlow too: the same
records or values, or both an error. ``runner`` runs every batch of inputs in
a child process, so a crash or a hang is caught (with a timeout) and the
input that caused it is saved to a file named in the failure.

CI runs a few thousand inputs per target (``test_fuzz.py``). A long campaign::

    python -m tests.fuzz.run --target example --inputs 1000000 [--seed 7] [--out fuzz-findings]

and coverage-guided, in one process, where ``atheris`` installs (``pip install atheris``)::

    python -m tests.fuzz.atheris_main --target tfrecord [libFuzzer options, e.g. -runs=100000]

A saved input is replayed in-process with ``python -m tests.fuzz.run --replay FILE``.
"""
