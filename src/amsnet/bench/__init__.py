"""Benchmarks behind ``amsnet bench``: compute cost (:mod:`~amsnet.bench.cost`), speed and
memory (:mod:`~amsnet.bench.speed`), PSNR-versus-time charts (:mod:`~amsnet.bench.chart`) and
the equal-budget quality study (:mod:`~amsnet.bench.quality`)."""
