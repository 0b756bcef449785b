"""Inference of fluorescence from RI: one volume in memory, or files streamed frame by frame.

:func:`predict_volume` takes RI on any grid, resamples it to the model's grid (the canonical
0.2 x 0.15 x 0.15 µm), normalises it with the medium index, predicts patch by patch with
uncertainty (:mod:`ri2fl.infer.uncertainty`), and maps the result back onto the input grid.
:func:`predict_file` does the same for any readable file, frame by frame, into an OME-Zarr
store written as it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX, TARGETS
from ..errors import ConfigError, InputError, ModelError
from ..preprocess import LazyResampled, resample_blockwise
from ..preprocess import same_grid as _same_grid
from .device import choose_device, make_runner
from .fused import FusedPredictor, predict_fused
from .tiling import fit_tile, predict_tiled
from .uncertainty import ensemble_fn

__all__ = ["Prediction", "channel_names", "inference_tile", "load_model", "nonnegative",
           "predict_file", "predict_volume", "prediction_from_stack"]

log = logging.getLogger(__name__)

#: Default patch (z, y, x) of the RI2FL network (spec section 3).
DEFAULT_PATCH_SIZE = (64, 256, 256)


@dataclass
class Prediction:
    """Inferred fluorescence with its uncertainty, on the grid of the input RI.

    Attributes
    ----------
    fl : dict
        Target name -> float32 (Z, Y, X) inferred fluorescence (the mean of the ensemble
        means), on a fixed scale shared by all volumes (no per-volume rescaling).
    uncertainty_data : dict
        Target -> voxel-wise s.d. over test-time augmentations (empty without ``tta``).
    uncertainty_model : dict
        Target -> voxel-wise s.d. over MC-dropout passes (empty without ``mc``).
    targets : list of str
        The predicted targets, in order.
    voxel_size_um : tuple of float
        Voxel size (z, y, x) of the arrays, the input's.
    tile_size : tuple of int, optional
        The tile (z, y, x, on the model's grid) the network predicted with.
    """

    fl: dict[str, Any]
    uncertainty_data: dict[str, Any] = field(default_factory=dict)
    uncertainty_model: dict[str, Any] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    voxel_size_um: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM
    tile_size: tuple[int, int, int] | None = None

    def channels(self) -> dict[str, Any]:
        """All maps by output channel name (``<target>``, ``<target>_uncertainty_data``, ...)."""
        out = dict(self.fl)
        out.update({f"{t}_uncertainty_data": v for t, v in self.uncertainty_data.items()})
        out.update({f"{t}_uncertainty_model": v for t, v in self.uncertainty_model.items()})
        return out


def channel_names(targets: Sequence[str], tta: int = 0, mc: int = 0) -> list[str]:
    """Output channel names in stored order: targets, then data s.d., then model s.d.

    The one layout of every prediction store (:mod:`ri2fl.io.prediction`).
    """
    from ..io.prediction import prediction_channel_names

    return prediction_channel_names(targets, data=bool(tta), model=bool(mc))


def load_model(model: str | Path | torch.nn.Module = "default",
               device: str | torch.device | None = None) -> torch.nn.Module:
    """A network from a shipped name, a checkpoint path, or a module given as is."""
    if isinstance(model, torch.nn.Module):
        return model
    from ..models import load

    return load(str(model), device=choose_device(device))


def _model_targets(model: torch.nn.Module) -> list[str]:
    targets = getattr(model, "targets", None)
    if targets:
        return list(targets)
    n_out = getattr(model, "out_channels", None) or getattr(
        getattr(model, "head", None), "out_channels", len(TARGETS))
    return list(TARGETS[:n_out]) if n_out <= len(TARGETS) else [f"ch{i}" for i in range(n_out)]


def _target_indices(available: Sequence[str], targets: Sequence[str] | None) -> list[int]:
    if targets is None:
        return list(range(len(available)))
    missing = [t for t in targets if t not in available]
    if missing:
        raise ConfigError(f"the model does not predict {', '.join(missing)}", "--targets",
                          f"choose from {', '.join(available)}")
    return [list(available).index(t) for t in targets]


def _check_voxel_size(voxel_size_um: Any) -> tuple[float, float, float]:
    from ..io import voxel_size_from

    return voxel_size_from(voxel_size_um, "voxel_size_um")


def _model_voxel(net: torch.nn.Module) -> tuple[float, float, float]:
    """The voxel size of the network's grid, checked like any other voxel size."""
    from ..io import voxel_size_from

    try:
        return voxel_size_from(getattr(net, "voxel_size_um", None) or CANONICAL_VOXEL_SIZE_UM,
                               "voxel_size_um")
    except InputError as exc:
        raise ModelError(f"the model's {exc.what}", getattr(net, "checkpoint_path", "model"),
                         "use a model trained on a grid of 0.01-50 µm voxels") from None


def _budget_grid(shape: Sequence[int], voxel: tuple[float, float, float],
                 model_voxel: tuple[float, float, float], n_out: int, in_memory: bool,
                 scratch_dir: str | Path | None, where: str | Path = "voxel_size_um"
                 ) -> tuple[int, int, int]:
    """The model's grid of ``shape``, refused before anything is allocated when its
    prediction exceeds the voxel limit, the memory (``in_memory``) or the scratch disk."""
    from ..preprocess import check_grid_budget, check_resolves_cells

    check_resolves_cells(voxel, where)
    same_grid = _same_grid(voxel, model_voxel)
    if same_grid and not in_memory:
        return tuple(int(n) for n in shape)  # written straight into ``out``
    input_bytes = 4.0 * n_out * float(np.prod([float(n) for n in shape]))
    grid = check_grid_budget(shape, voxel, voxel if same_grid else model_voxel, channels=n_out,
                             extra_bytes=input_bytes if in_memory and not same_grid else 0.0,
                             scratch_dir=scratch_dir, on_disk=not in_memory, where=where,
                             doing="predicting" if same_grid else "resampling")
    return tuple(int(n) for n in shape) if same_grid else grid


def nonnegative(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``fn`` (a patch predictor returning NumPy) with its outputs clipped at 0.

    Fluorescence is non-negative and every ri2fl model learns targets clipped at 0: a linear
    head's small negative excursions are noise (on the 24 held-out FOVs of issue 4 clipping
    raised the droplet PCC from 0.888 to 0.890, that of one hek293 field from 0.890 to 0.931).
    Applied to each pass, before the TTA / MC-dropout ensemble.
    """
    def clipped(batch: np.ndarray) -> np.ndarray:
        y = fn(batch)
        return np.maximum(y, 0, out=y if y.flags.writeable else None)

    return clipped


def _patch_fn(model: torch.nn.Module, indices: list[int], tta: int, mc: int,
              medium_index: float, device, precision: str, seed: int,
              normalize: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Raw-RI patch batch -> [mean, sd_data?, sd_model?] of the selected targets."""
    from ..preprocess import normalize_ri

    runner = make_runner(model, device=device, precision=precision)
    all_targets = len(indices) == len(_model_targets(model)) and indices == sorted(indices)

    def net(batch: np.ndarray) -> np.ndarray:
        y = runner(batch)
        return y if all_targets else y[:, indices]

    ens = ensemble_fn(nonnegative(net), tta=tta, mc=mc, model=runner.model, seed=seed)
    if not normalize:
        return ens

    # normalisation is voxel-wise, so it commutes with padding and tiling: applying it per
    # patch lets the raw RI be read lazily
    def fn(batch: np.ndarray) -> np.ndarray:
        return ens(np.asarray(normalize_ri(batch, medium_index=medium_index), np.float32))

    return fn


def _fused_tiler(model: torch.nn.Module, indices: list[int], tta: int, mc: int,
                 medium_index: float, device, precision: str, seed: int,
                 normalize: bool) -> Callable[..., Any]:
    """``tiler(array, out=..., **tiling)``: the fused per-patch path (:mod:`.fused`)."""
    runner = make_runner(model, device=device, precision=precision)
    all_targets = len(indices) == len(_model_targets(model)) and indices == sorted(indices)
    predictor = FusedPredictor(runner, len(indices), None if all_targets else indices, tta=tta,
                               mc=mc, medium_index=medium_index if normalize else None,
                               seed=seed)

    def tiler(array: Any, out: Any = None, n_out: int | None = None, **tiling: Any) -> Any:
        return predict_fused(predictor, array, out=out, **tiling)

    return tiler


def _reference_tiler(model: torch.nn.Module, indices: list[int], tta: int, mc: int,
                     medium_index: float, device, precision: str, seed: int,
                     normalize: bool) -> Callable[..., Any]:
    """``tiler(array, out=..., **tiling)``: NumPy ensemble around the network, patch by patch
    (the straightforward path that the fused one must equal)."""
    fn = _patch_fn(model, indices, tta, mc, medium_index, device, precision, seed, normalize)

    def tiler(array: Any, out: Any = None, **tiling: Any) -> Any:
        return predict_tiled(fn, array, out=out, **tiling)

    return tiler


def inference_tile(net: Any, shape: Sequence[int] | None = None,
                   tile: Sequence[int] | None = None) -> tuple[int, int, int]:
    """The tile (z, y, x) a network predicts with.

    ``tile`` when given, else the checkpoint's ``tile_size``, else its training
    ``patch_size``, else 64 x 256 x 256; cut to the volume's ``shape`` (on the model's grid)
    when given (:func:`ri2fl.infer.tiling.fit_tile`). The shipped ``default`` names a tile
    larger than its training patch: a network with instance normalisation reads a tile through
    that tile's own statistics, and it reads a whole 64 x 256 x 256 field better than
    24 x 64 x 64 pieces of it (docs/inference.md, "Tile size").
    """
    size = (tile or getattr(net, "tile_size", None) or getattr(net, "patch_size", None)
            or DEFAULT_PATCH_SIZE)
    if shape is not None:
        return fit_tile(size, shape)
    return tuple(int(v) for v in size)  # type: ignore[return-value]


def predict_volume(ri: Any, voxel_size_um: Sequence[float] | float,
                   model: str | Path | torch.nn.Module = "default", tta: int = 0, mc: int = 0,
                   targets: Sequence[str] | None = None, medium_index: float = MEDIUM_INDEX,
                   batch_size: int = 2, device: str | torch.device | None = None,
                   patch_size: Sequence[int] | None = None, overlap: float = 0.25,
                   precision: str = "auto", out: Any = None, progress: bool | None = None,
                   seed: int = 0, scratch_dir: str | Path | None = None,
                   domain_check: bool | str | Path = True, fused: bool = True) -> Prediction:
    """Infer the fluorescence channels (and their uncertainty) of one RI tomogram.

    Parameters
    ----------
    ri : array-like
        (Z, Y, X) absolute refractive index, any grid. NumPy, zarr, h5py or dask; it is read
        patch by patch when no resampling is needed.
    voxel_size_um : float or (z, y, x)
        Voxel size of ``ri`` in µm.
    model : str, Path or torch.nn.Module
        ``"default"``, another shipped name, a checkpoint path, or a network (a module mapping
        (N, 1, z, y, x) to (N, C, z, y, x); its ``targets``, ``patch_size`` and
        ``voxel_size_um`` attributes are used when present).
    tta, mc : int
        Test-time augmentation and MC-dropout passes (0: off, else at least 2).
    targets : sequence of str, optional
        Subset of the model's targets (default: all).
    medium_index : float
        Refractive index of the medium (1.337 culture medium; 1.335 PBS).
    batch_size : int
        Patches per network call.
    device : {"cpu", "cuda"}, optional
        Default: CUDA when present.
    patch_size : (z, y, x), optional
        Tile size on the model's grid. Default: :func:`inference_tile`. Cut to the volume
        where it is larger (:func:`ri2fl.infer.tiling.fit_tile`).
    overlap : float
        Patch overlap fraction, 0..0.5.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: bf16 + channels-last on a CPU with native bf16 and on CUDA, else fp32.
    out : array-like, optional
        (n_channels, Z, Y, X) zero-filled array (e.g. a zarr array) receiving the channels in
        the order of :func:`channel_names`; the returned maps are then views of it.
    progress : bool, optional
        Show a progress bar over patches.
    seed : int
        Seed of the random parts (TTA noise, dropout masks) for reproducible output.
    scratch_dir : str or Path, optional
        With ``out`` and an input off the model's grid: folder for the temporary prediction
        on the model's grid (a zarr store, removed afterwards; default: the system's).
    domain_check : bool, str or Path
        Warn (:class:`ri2fl.preprocess.domain.OffDomainWarning`) when ``ri`` is unlike the
        model's training data (:func:`ri2fl.preprocess.domain.check_domain`); a str or Path
        names the input in the warning; False: no check.
    fused : bool
        Run every patch's normalisation, ensemble, network and blending in torch on the
        device (:mod:`ri2fl.infer.fused`; the network's full-grid head only where weights are
        non-zero). False: the reference path, a NumPy ensemble around the network; both give
        the same maps to float round-off.

    Returns
    -------
    Prediction
        Maps on the input grid.

    Examples
    --------
    >>> pred = predict_volume(ri, (0.2, 0.15, 0.15), tta=8, mc=8)   # doctest: +SKIP
    >>> pred.fl["nucleus"].shape == ri.shape                       # doctest: +SKIP
    True
    """
    from ..preprocess import resample_to_shape

    if getattr(ri, "ndim", None) != 3:
        raise InputError(f"expected a 3D (z, y, x) RI volume, got shape "
                         f"{getattr(ri, 'shape', None)}", "ri")
    voxel = _check_voxel_size(voxel_size_um)
    net = load_model(model, device)
    available = _model_targets(net)
    indices = _target_indices(available, targets)
    chosen = [available[i] for i in indices]
    model_voxel = _model_voxel(net)
    same_grid = _same_grid(voxel, model_voxel)
    names = channel_names(chosen, tta, mc)
    grid_shape = _budget_grid(ri.shape, voxel, model_voxel, len(names), out is None,
                              scratch_dir)
    patch = inference_tile(net, grid_shape, patch_size)
    if domain_check is not False:
        _check_domain(ri, voxel, medium_index, net, domain_check)
    if out is not None and tuple(out.shape) != (len(names), *ri.shape):
        raise ValueError(f"out has shape {out.shape}, expected {(len(names), *ri.shape)}")
    normalize = (getattr(net, "config", None) or {}).get("input_norm", "ri") == "ri"
    make_tiler = _fused_tiler if fused else _reference_tiler
    tiler = make_tiler(net, indices, tta, mc, medium_index, device, precision, seed, normalize)
    kwargs = {"patch_size": patch, "overlap": overlap, "batch_size": batch_size,
              "n_out": len(names), "progress": progress}

    if same_grid:
        result = tiler(ri, out=out, **kwargs)
    else:
        # the RI is read and resampled patch by patch (exactly preprocess.resample's linear
        # zoom), so neither the input nor its canonical copy is ever whole in memory
        canonical = LazyResampled(ri, grid_shape)
        if out is None:
            pred = tiler(canonical, **kwargs)
            result = resample_to_shape(pred, tuple(ri.shape), order=1)
        else:
            result = _predict_via_scratch(tiler, canonical, out, scratch_dir, kwargs)
    return prediction_from_stack(result, chosen, tta, mc, voxel, patch)


def _predict_via_scratch(tiler: Callable, canonical: LazyResampled, out: Any,
                         scratch_dir: str | Path | None, kwargs: dict) -> Any:
    """Tile into a temporary zarr on the model's grid, then resample it into ``out`` by blocks."""
    import tempfile

    import zarr
    from zarr.codecs import BloscCodec

    shape = (int(kwargs["n_out"]), *canonical.shape)
    with tempfile.TemporaryDirectory(prefix="ri2fl-predict-", dir=scratch_dir) as tmp:
        scratch = zarr.create_array(
            Path(tmp) / "canonical.zarr", shape=shape, dtype="float32", fill_value=0,
            chunks=(1, *(min(s, c) for s, c in zip(canonical.shape, (32, 256, 256)))),
            compressors=BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"))
        tiler(canonical, out=scratch, **kwargs)
        resample_blockwise(scratch, out, progress=kwargs.get("progress"))
    return out


def prediction_from_stack(result: Any, targets: list[str], tta: int, mc: int,
                          voxel: tuple[float, float, float],
                          tile: tuple[int, int, int]) -> Prediction:
    """A :class:`Prediction` from the tiler's (C, Z, Y, X) output of an ensemble function.

    The channels are the means of ``targets``, then (with ``tta``) their data uncertainty,
    then (with ``mc``) their model uncertainty, as :func:`ensemble_fn` stacks them; a
    non-NumPy ``result`` (zarr) is wrapped lazily with dask.
    """
    n = len(targets)
    if not isinstance(result, np.ndarray):
        import dask.array as da

        result = da.from_array(result, chunks=(1, *result.shape[1:]))
    maps: list[dict[str, Any]] = [{}, {}, {}]
    blocks = [0] + ([1] if tta else []) + ([2] if mc else [])
    for b, kind in enumerate(blocks):
        for i, t in enumerate(targets):
            maps[kind][t] = result[b * n + i]
    # s.d. must not go below 0 after resampling with order > 1 or blending round-off
    return Prediction(maps[0], maps[1], maps[2], list(targets), voxel, tuple(tile))


def _check_domain(ri: Any, voxel: Sequence[float], medium_index: float, net: torch.nn.Module,
                  name: bool | str | Path) -> list[str]:
    """Warn once if ``ri`` is unlike ``net``'s training data; the reasons (empty if not)."""
    from ..preprocess.domain import warn_if_off_domain

    label = name if isinstance(name, str | Path) else "the RI volume"
    return warn_if_off_domain(ri, voxel, medium_index, net, label)


class _FrameView:
    """``array[t]`` of a (T, C, Z, Y, X) writable array, as a writable (C, Z, Y, X) array."""

    def __init__(self, array: Any, t: int):
        self.array, self.t = array, t
        self.shape = tuple(array.shape[1:])
        self.ndim = len(self.shape)
        self.dtype = array.dtype
        chunks = getattr(array, "chunks", None)
        self.chunks = tuple(chunks[1:]) if chunks else None

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        return self.array[(self.t, *key)]

    def __setitem__(self, key, value) -> None:
        key = key if isinstance(key, tuple) else (key,)
        self.array[(self.t, *key)] = value


def predict_file(input_path: str | Path, output_path: str | Path,
                 model: str | Path | torch.nn.Module = "default",
                 targets: Sequence[str] | None = None, tta: int = 0, mc: int = 0,
                 batch_size: int = 2, device: str | torch.device | None = None,
                 frame: int | None = None, write_tcf: str | Path | None = None,
                 voxel_size_um: Sequence[float] | None = None,
                 medium_index: float | None = None, precision: str = "auto",
                 patch_size: Sequence[int] | None = None, overlap: float = 0.25,
                 progress: bool | None = None, overwrite: bool = False,
                 fill_missing: bool = False, dtype: Any = "float32") -> Path:
    """Predict every frame of a file into an OME-Zarr store, frame by frame.

    Parameters
    ----------
    input_path : str or Path
        Anything :func:`ri2fl.io.read` reads (TCF, HDF5, TIFF, OME-Zarr, .npy).
    output_path : str or Path
        The ``.ome.zarr`` store to write: axes czyx (one frame) or tczyx (time-lapse),
        channels ``<target>``, ``<target>_uncertainty_data``, ``<target>_uncertainty_model``
        (the uncertainty ones only with ``tta`` / ``mc``), on the input grid and voxel size.
        Its ``ri2fl`` attributes list under ``off_domain`` why the input (its first frame) is
        unlike the model's training data, as the one ``OffDomainWarning`` issued says.
    model, targets, tta, mc, batch_size, device, precision, patch_size, overlap
        As in :func:`predict_volume`.
    frame : int, optional
        Predict only this time point.
    write_tcf : str or Path, optional
        Also write a copy of the input TCF with the predicted channels added as
        ``Data/3DFL/CH0..`` (the reference tool's layout).
    voxel_size_um : (z, y, x), optional
        Overrides the file's voxel size.
    medium_index : float, optional
        Overrides the file's medium index (default: the file's, else 1.337).
    overwrite : bool
        Replace an existing store (and ``write_tcf`` copy) that ri2fl wrote; anything else
        is never replaced.
    fill_missing : bool
        Read missing chunks of an incomplete input store as the fill value instead of refusing.
    dtype : {"float32", "float16"}
        Stored type (:data:`ri2fl.io.PREDICTION_DTYPES`); the channels are the same. float16
        predictions are blended in float32 and rounded once.

    Returns
    -------
    Path
        ``output_path``.
    """
    from ..io import check_prediction_dtype, read
    from ..io.ome_zarr import create_ome_zarr

    dtype = check_prediction_dtype(dtype)

    vol = read(input_path, frame=frame, voxel_size_um=voxel_size_um, lazy=True,
               fill_missing=fill_missing)
    if "c" in vol.axes:
        vol = vol.channel(0) if vol.axes == "czyx" else _first_channel(vol)
    n_index = medium_index if medium_index is not None else (vol.medium_index or MEDIUM_INDEX)
    net = load_model(model, device)
    chosen = [_model_targets(net)[i] for i in _target_indices(_model_targets(net), targets)]
    names = channel_names(chosen, tta, mc)
    # refused here, before the output store or any scratch is created
    _budget_grid(vol.spatial_shape, vol.voxel_size_um, _model_voxel(net), len(names), False,
                 Path(output_path).parent, where=input_path)
    n_frames = vol.time_points
    shape = (len(names), *vol.spatial_shape)
    timelapse = vol.axes.startswith("t")
    # one check per input, on its first frame
    off_domain = _check_domain(vol.data[0] if timelapse else vol.data, vol.voxel_size_um,
                               n_index, net, Path(input_path).name)
    with create_ome_zarr(output_path, ((n_frames,) if timelapse else ()) + shape,
                         vol.voxel_size_um, channel_names=names,
                         axes="tczyx" if timelapse else "czyx",
                         time_interval_s=vol.time_interval_s, overwrite=overwrite,
                         dtype=dtype) as writer:
        target = writer if dtype == np.float32 else _float32_scratch(writer)
        for t in range(n_frames):
            ri = _frame_source(vol.data[t] if timelapse else vol.data)
            out = _FrameView(target, t) if timelapse else target
            pred = predict_volume(ri, vol.voxel_size_um, model=net, tta=tta, mc=mc,
                                  targets=chosen, medium_index=n_index, batch_size=batch_size,
                                  device=device, patch_size=patch_size, overlap=overlap,
                                  precision=precision, out=out, progress=progress, seed=t,
                                  scratch_dir=writer.scratch_dir, domain_check=False)
        if target is not writer:
            _store_rounded(target, writer)
        # every frame has the same shape, so the last frame's tile is every frame's
        writer.group.attrs["ri2fl"] = {
            **_provenance(net, input_path, n_index, tta, mc, precision, pred.tile_size,
                          overlap, frame), "off_domain": off_domain}
    if write_tcf is not None:
        _write_tcf_copy(input_path, write_tcf, output_path, chosen, frame, overwrite)
    return Path(output_path)


def _float32_scratch(writer: Any) -> Any:
    """A float32 zarr array shaped like ``writer``, in its private scratch folder: overlapping
    patches are summed there, not in a float16 store that would round every partial sum."""
    import zarr

    return zarr.create_array(writer.scratch_dir / "float32.zarr", shape=writer.shape,
                             chunks=writer.chunks, dtype="float32", fill_value=0)


def _store_rounded(source: Any, writer: Any) -> None:
    """Copy ``source`` into ``writer`` chunk by chunk, rounded to the writer's type."""
    import dask.array as da

    da.store(da.from_zarr(source).astype(writer.dtype), writer.array, lock=False)


def _provenance(net: torch.nn.Module, input_path: str | Path, medium_index: float, tta: int,
                mc: int, precision: str, tile: Sequence[int], overlap: float,
                frame: int | None) -> dict[str, Any]:
    """What produced a prediction, stored in the OME-Zarr attributes under ``ri2fl``."""
    from .. import __version__

    return {
        "version": __version__, "input": str(input_path), "frame": frame,
        "model": str(getattr(net, "checkpoint_path", None) or type(net).__name__),
        "model_voxel_size_um": list(getattr(net, "voxel_size_um", None)
                                    or CANONICAL_VOXEL_SIZE_UM),
        "medium_index": float(medium_index), "tta": int(tta), "mc": int(mc),
        "precision": precision,
        "tile_size": [int(v) for v in tile],
        "overlap": float(overlap),
        "uncertainty": "population s.d. (ddof=0) over passes; final FL = mean of the means",
    }


#: Frames up to this size are loaded whole; larger ones (stitched fields) stay lazy, so that
#: the tiler reads one patch at a time and memory stays bounded.
LOAD_FRAME_BYTES = 1 << 30


def _frame_source(data: Any) -> Any:
    """One frame as the tiler will read it: loaded if small or stored as a single chunk
    (which would be read whole again for every patch), else lazy."""
    chunksize = getattr(data, "chunksize", None)
    if chunksize is None:
        return data
    whole_chunk = tuple(chunksize[-3:]) == tuple(data.shape[-3:])
    if whole_chunk or np.prod(data.shape, dtype=float) * 4 <= LOAD_FRAME_BYTES:
        return np.asarray(data, dtype=np.float32)
    return data


def _first_channel(vol):
    from dataclasses import replace

    return replace(vol, data=vol.data[:, 0], axes="tzyx", channel_names=vol.channel_names[:1])


def _write_tcf_copy(input_path: str | Path, tcf_out: str | Path, zarr_path: str | Path,
                    targets: list[str], frame: int | None, overwrite: bool = False) -> None:
    """Copy the input TCF with the predicted FL as Data/3DFL CH0..CHn (reference layout).

    Channels go in the order of :data:`ri2fl.constants.TARGETS` (CH0 membrane ... CH5
    nucleolus), as the reference tool wrote them.
    """
    from ..io import read
    from ..io.tcf import add_fl_channels

    if Path(input_path).suffix.lower() != ".tcf":
        raise ConfigError("--write-tcf needs TCF inputs", str(input_path),
                          "leave out --write-tcf for other formats")
    pred = read(zarr_path, modality="fl")
    ordered = sorted(targets, key=lambda t: TARGETS.index(t) if t in TARGETS else len(TARGETS))
    timelapse = pred.axes.startswith("t")
    channels = {}
    for t in ordered:
        i = pred.channel_names.index(t)
        channels[t] = np.asarray(pred.data[:, i] if timelapse else pred.data[i], np.float32)
    add_fl_channels(input_path, tcf_out, channels, voxel_size_um=pred.voxel_size_um,
                    overwrite=overwrite)
