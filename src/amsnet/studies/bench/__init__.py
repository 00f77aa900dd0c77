"""Benchmarks behind ``amsnet bench``: compute cost (:mod:`~amsnet.studies.bench.cost`),
speed and memory (:mod:`~amsnet.studies.bench.speed`), PSNR-versus-time charts
(:mod:`~amsnet.studies.bench.chart`) and the equal-budget quality study
(:mod:`~amsnet.studies.bench.quality`)."""
