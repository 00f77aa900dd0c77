"""Benchmarks behind ``amsnet bench``: compute cost (:mod:`~amsnet.bench.cost`), speed and
memory (:mod:`~amsnet.bench.speed`) and PSNR-versus-time charts (:mod:`~amsnet.bench.chart`)."""
