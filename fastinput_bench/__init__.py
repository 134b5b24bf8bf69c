"""fastinput's benchmarks: the ``fastinput-bench`` CLI's pipelines, data generators and figures (RESULTS.md).

Shipped with fastinput as the package ``fastinput_bench``; each script runs as ``python -m fastinput_bench.NAME``.
The benchmarks use fastinput's public API (``import fastinput as fi``) wherever a public name exists. The internal
imports that remain, and why:

- ``fastinput.readers.framing.frame``: writes TFRecord files of made-up records (``memory``, ``s3_read``,
  ``tfrecord_read``); fastinput has no public writer.
- ``fastinput.readers.files``: resolves ``--data`` paths and URLs as the readers do (``datafiles``).
- ``fastinput.options.available_cpus``: the cores the run may use, for the report (``measure``, ``report``).
- ``fastinput.structure`` and ``fastinput.device.framework_of``: walk a batch's leaves and tell a device's
  framework, as ``prefetch_to_device`` does (``devices``, ``measure``).
- ``fastinput.fused_ops.crop_window`` and ``jpeg_kernel``: the JPEG kernel benchmark times the kernels themselves
  on the windows the fused kernel draws (``image_kernels``).
- ``fastinput._engine.instrument`` (in a ``timeit`` statement): the profiler-overhead benchmark times the engine's
  trace-hook check (``profiler_overhead``).
"""
