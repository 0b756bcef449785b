"""ri2fl: label-free multiplexed 3D imaging of living cells from refractive-index tomograms.

Subpackages
-----------
io          readers (TCF, HDF5, TIFF/OME-TIFF, OME-Zarr, NumPy) and writers (OME-Zarr, OME-TIFF)
preprocess  resampling, RI normalisation, axial RI/FL registration
simulate    realistic cells as a holotomograph sees them, with ground truth
models      3D U-Net family, checkpoints, shipped default weights
train       training engine (CPU, CUDA, DDP under torchrun)
infer       streamed tiled inference with uncertainty
evaluate    metrics, structure matching, experiments
segment     organelle masks and cell instances
profile     single-cell features and statistics
report      figures and HTML reports
batch       Dask execution over many inputs, resumable runs
stitch      large-field stitching
napari      napari plugin
cli         the ``ri2fl`` command
"""

__version__ = "0.1.0"
