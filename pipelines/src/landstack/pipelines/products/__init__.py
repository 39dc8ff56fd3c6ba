"""Post-processing and delivery of the four product families.

Algorithms (pure functions on arrays, codes from the catalogue specs): :mod:`filters` (bilateral
filter of class probabilities), :mod:`blending` (production-unit weights and cores), :mod:`clcplus`,
:mod:`hrl`, :mod:`emc_built`, :mod:`cisc`. Streaming, block by block so memory follows the block
size: :mod:`windowed` (block windows with halos), :mod:`blend_blocks`, :mod:`clcplus_blocks`,
:mod:`clcplus_tile` and :mod:`intermediates` (per-family drivers of a roll-out tile),
:mod:`staging` (windowed reads from the store, block-wise staged layers, atomic upload).
Delivery: :mod:`mosaic` (block-wise product tiles), :mod:`cog` (COG + `.aux.xml` attribute
table), :mod:`quicklook` (PNG with legend).
"""
