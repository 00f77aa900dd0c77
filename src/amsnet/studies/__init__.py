"""Studies: code that measures and shows the library, kept apart from it.

Nothing in the library's core (ops, nets, methods, data, training, inference, evaluation, the
model zoo) imports from here; the command line's ``bench`` and ``demo`` do.

* :mod:`amsnet.studies.bench`: compute cost, speed and memory, quality at equal budget, and
  PSNR-versus-time charts (``amsnet bench``).
* :mod:`amsnet.studies.demo`: ``amsnet demo`` / ``make demo``.
* :mod:`amsnet.studies.classical`: the BM3D baseline (optional ``bm3d`` package).
* :mod:`amsnet.studies.comparison`: side-by-side comparison sheets of crops.
"""
