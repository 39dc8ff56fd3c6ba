"""A synthetic Sentinel-2 L2A archive shaped like the public ones, generated from a known ground truth.

`scene` draws the ground truth (land cover, imperviousness, built-up), `phenology` gives every class
its spectral-temporal behaviour, `clouds` the atmosphere (clouds, shadows, SCL), and `archive`
writes COGs, STAC items, the truth layers and labelled sample points to an object store.
"""

from landstack.catalog.grid import Aoi
from landstack.pipelines.synth.archive import SynthConfig, SynthResult, write_archive
from landstack.pipelines.synth.scene import Scene, make_scene

__all__ = ["Aoi", "Scene", "SynthConfig", "SynthResult", "make_scene", "write_archive"]
