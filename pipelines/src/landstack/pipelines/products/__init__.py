"""Post-processing and delivery of the four product families.

Algorithms (pure functions on arrays, codes from the catalogue specs): :mod:`filters` (bilateral
filter of class probabilities), :mod:`blending` (production-unit blending), :mod:`clcplus`,
:mod:`hrl`, :mod:`emc_built`, :mod:`cisc`. Delivery: :mod:`mosaic` (block-wise product tiles),
:mod:`cog` (COG + `.aux.xml` attribute table), :mod:`quicklook` (PNG with legend).
"""
