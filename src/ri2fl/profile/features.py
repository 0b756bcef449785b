"""Single-cell features from refractive index, fluorescence and masks.

One row per cell, in families that follow CellProfiler's 3D measurement modules:
morphology (cell, nucleus, cytoplasm, nucleoli), refractive index and dry mass per
compartment, fluorescence per channel and compartment, lipid droplets, texture and
neighbours. Every column carries its unit in its name (``cell_volume_um3``,
``cell_dry_mass_pg``); :func:`feature_dictionary` documents each of them and
``docs/features.md`` lists them.

Conventions
-----------
- Volumes count voxels (exact for a voxelised object). Surface areas are measured on a
  smoothed surface: marching cubes on the Gaussian-smoothed mask. Raw binary masks
  overestimate the area of a sphere by 8-16 % (staircase), which makes a perfect sphere's
  sphericity read 0.89; smoothing with a sigma that grows with the object's size (0.5 to 1
  voxel) brings spheres and ellipsoids of 6 voxels radius or more within 3 %.
- Dry mass follows n = n_m + alpha C, so mass (pg) = sum((n - n_m) / alpha) * voxel volume
  with alpha in mL/g = µm³/pg.
- Axis lengths are the full axes of the ellipsoid with the same second moments
  (2 sqrt(5 lambda)), exact for a solid ellipsoid.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError, cKDTree
from skimage import measure

from ..constants import ALPHA_ML_PER_G, MEDIUM_INDEX, RI_CLIP, TARGETS
from ..errors import InputError
from ..progress import progress

#: Columns that identify or locate a cell, or flag it; not features.
META_COLUMNS: tuple[str, ...] = (
    "label", "centroid_z_um", "centroid_y_um", "centroid_x_um", "cut_by_edge",
)

#: Columns other steps add (profile command, time-lapses, demo); not features either.
METADATA_COLUMNS: tuple[str, ...] = (
    "source", "field", "frame", "time_s", "track_id", "position", "condition", "cell_type",
    "n_cells_simulated",
)

#: Suffix of the per-cell inference-uncertainty columns (quality control, not features).
UNCERTAINTY_SUFFIX = "_uncertainty_mean_au"

#: Compartments for refractive-index features.
RI_COMPARTMENTS: tuple[str, ...] = ("cell", "nucleus", "cytoplasm", "nucleoli")
#: Compartments for fluorescence features.
FL_COMPARTMENTS: tuple[str, ...] = ("cell", "nucleus", "cytoplasm")

_SHAPE = {
    "volume_um3": ("µm³", "volume (voxel count x voxel volume)"),
    "surface_area_um2": ("µm²", "area of the smoothed surface (marching cubes after "
                                "Gaussian smoothing of the mask)"),
    "sphericity": ("1", "pi^(1/3) (6V)^(2/3) / A: 1 for a sphere, smaller for other shapes"),
    "equivalent_diameter_um": ("µm", "diameter of the sphere of the same volume"),
    "major_axis_um": ("µm", "longest full axis of the ellipsoid with the same second moments"),
    "intermediate_axis_um": ("µm", "middle full axis of the same-moments ellipsoid"),
    "minor_axis_um": ("µm", "shortest full axis of the same-moments ellipsoid"),
    "elongation": ("1", "major axis / minor axis"),
    "extent": ("1", "volume / volume of the axis-aligned bounding box"),
    "solidity": ("1", "volume enclosed by the smoothed surface / volume of its convex hull"),
}

_RI = {
    "ri_mean": ("1", "mean refractive index"),
    "ri_sd": ("1", "standard deviation of the refractive index"),
    "ri_p10": ("1", "10th percentile of the refractive index"),
    "ri_p50": ("1", "median refractive index"),
    "ri_p90": ("1", "90th percentile of the refractive index"),
    "dry_mass_pg": ("pg", "dry mass: sum((n - n_medium) / alpha) x voxel volume"),
    "dry_mass_density_pg_per_um3": ("pg/µm³", "dry-mass concentration: mean (n - n_medium) "
                                              "/ alpha"),
}

_FL = {
    "mean_au": ("a.u.", "mean intensity"),
    "sd_au": ("a.u.", "standard deviation of the intensity"),
    "integrated_au_um3": ("a.u. µm³", "integrated intensity: sum x voxel volume"),
}

_TEXTURE = {
    "glcm_contrast": ("1", "Haralick contrast of the 3D grey-level co-occurrence matrix of the "
                           "RI (16 levels over the RI window, 13 directions, distance 1 voxel)"),
    "glcm_correlation": ("1", "Haralick correlation of the 3D GLCM of the RI"),
    "glcm_energy": ("1", "Haralick energy (angular second moment) of the 3D GLCM of the RI"),
    "glcm_homogeneity": ("1", "Haralick homogeneity (inverse difference moment) of the 3D GLCM"),
    "glcm_entropy": ("bit", "entropy of the 3D GLCM of the RI"),
    "ri_gradient_mean_per_um": ("1/µm", "mean magnitude of the RI gradient"),
}

_GLCM_LEVELS = 16


# --------------------------------------------------------------------------- dictionary

def feature_dictionary(channels: Sequence[str] = TARGETS,
                       neighbour_radius_um: float = 20.0) -> pd.DataFrame:
    """Every column :func:`measure_cells` writes, with its family, unit and meaning.

    Parameters
    ----------
    channels : sequence of str
        Fluorescence channel names (default: the six targets).
    neighbour_radius_um : float
        The radius of the neighbour count (it is part of that column's name).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``family``, ``unit``, ``description``, in table order.
    """
    rows: list[tuple[str, str, str, str]] = [
        ("label", "identifier", "", "cell instance label in the cell mask"),
        ("centroid_z_um", "identifier", "µm", "cell centroid, z"),
        ("centroid_y_um", "identifier", "µm", "cell centroid, y"),
        ("centroid_x_um", "identifier", "µm", "cell centroid, x"),
        ("cut_by_edge", "quality", "bool", "the cell touches a face of the volume: "
                                           "its shape and mass are truncated"),
    ]
    for comp in ("cell", "nucleus"):
        for key, (unit, desc) in _SHAPE.items():
            rows.append((f"{comp}_{key}", "morphology", unit, f"{comp}: {desc}"))
    rows += [
        ("cytoplasm_volume_um3", "morphology", "µm³", "cell volume minus nucleus volume"),
        ("nucleus_to_cell_volume_ratio", "morphology", "1", "nucleus volume / cell volume"),
        ("nucleus_offset_um", "morphology", "µm", "distance between nucleus and cell centroids"),
        ("nucleus_count", "morphology", "1", "nuclei (connected components) inside the cell"),
        ("nucleolus_count", "morphology", "1", "nucleoli (connected components) in the nucleus"),
        ("nucleoli_volume_um3", "morphology", "µm³", "total nucleolar volume"),
        ("nucleolus_mean_volume_um3", "morphology", "µm³", "mean volume of one nucleolus"),
        ("nucleoli_to_nucleus_volume_ratio", "morphology", "1",
         "nucleolar volume / nucleus volume"),
    ]
    for comp in RI_COMPARTMENTS:
        for key, (unit, desc) in _RI.items():
            rows.append((f"{comp}_{key}", "refractive index", unit, f"{comp}: {desc}"))
    for ch in channels:
        for comp in FL_COMPARTMENTS:
            for key, (unit, desc) in _FL.items():
                rows.append((f"{comp}_{ch}_{key}", "fluorescence", unit,
                             f"{ch} fluorescence in the {comp}: {desc}"))
        rows.append((f"nucleus_{ch}_fraction", "fluorescence", "1",
                     f"fraction of the cell's integrated {ch} fluorescence in the nucleus"))
    rows += [
        ("lipid_droplet_count", "lipid droplets", "1", "lipid droplets (connected components) "
                                                       "in the cell"),
        ("lipid_droplets_volume_um3", "lipid droplets", "µm³", "total lipid-droplet volume"),
        ("lipid_droplet_mean_volume_um3", "lipid droplets", "µm³",
         "mean volume of one lipid droplet"),
        ("lipid_droplets_volume_fraction", "lipid droplets", "1",
         "lipid-droplet volume / cell volume"),
        ("lipid_droplets_dry_mass_pg", "lipid droplets", "pg",
         "dry mass of the lipid droplets (same alpha as protein: an estimate)"),
        ("lipid_droplets_ri_mean", "lipid droplets", "1", "mean RI of the lipid droplets"),
    ]
    for comp in ("cell", "nucleus"):
        for key, (unit, desc) in _TEXTURE.items():
            rows.append((f"{comp}_{key}", "texture", unit, f"{comp}: {desc}"))
    r = _radius_tag(neighbour_radius_um)
    rows += [
        (f"neighbours_within_{r}um_count", "neighbours", "1",
         f"other cells whose centroid lies within {neighbour_radius_um:g} µm"),
        ("nearest_neighbour_distance_um", "neighbours", "µm",
         "centroid distance to the nearest other cell"),
        ("touching_neighbours_count", "neighbours", "1", "other cells sharing a face with it"),
    ]
    for ch in channels:
        rows.append((f"cell_{ch}{UNCERTAINTY_SUFFIX}", "quality", "a.u.",
                     f"mean inference uncertainty (s.d.) of the {ch} channel in the cell: "
                     "high where the inferred fluorescence is not to be trusted"))
    return pd.DataFrame(rows, columns=["name", "family", "unit", "description"])


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The numeric feature columns of a feature table (identifiers and metadata left out)."""
    skip = set(META_COLUMNS) | set(METADATA_COLUMNS)
    return [c for c in table.columns
            if c not in skip and not c.endswith(UNCERTAINTY_SUFFIX)
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def _radius_tag(radius_um: float) -> str:
    return f"{radius_um:g}".replace(".", "p")


# --------------------------------------------------------------------------- inputs

def _as_spacing(voxel_size_um: float | Sequence[float]) -> np.ndarray:
    vs = np.atleast_1d(np.asarray(voxel_size_um, dtype=float))
    if vs.size == 1:
        vs = np.repeat(vs, 3)
    if vs.size != 3 or np.any(vs <= 0) or not np.all(np.isfinite(vs)):
        raise InputError(f"voxel size must be 3 positive numbers (z, y, x), got {voxel_size_um}",
                         "voxel_size_um")
    return vs


def _as_channels(fl, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    if fl is None:
        return {}
    if isinstance(fl, Mapping):
        channels = dict(fl)
    else:
        arr = np.asarray(fl)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[0] > len(TARGETS):
            raise InputError(f"fluorescence must be (C, Z, Y, X) with C <= {len(TARGETS)} or a "
                             f"dict of (Z, Y, X) arrays, got shape {arr.shape}", "fl")
        channels = {TARGETS[i]: arr[i] for i in range(arr.shape[0])}
    for name, arr in channels.items():
        if tuple(np.shape(arr)) != shape:
            raise InputError(f"fluorescence channel {name!r} has shape {np.shape(arr)}, "
                             f"the RI has {shape}", "fl", "resample both to one grid first")
    return channels


def _check_same_shape(name: str, arr, shape: tuple[int, ...]) -> None:
    if arr is not None and tuple(np.shape(arr)) != shape:
        raise InputError(f"{name} has shape {np.shape(arr)}, the RI has {shape}", name,
                         "masks, labels and fluorescence must be on the RI grid")


# --------------------------------------------------------------------------- shape

def _bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box (slices) of the True voxels of a (Z, Y, X) boolean array; None if there
    are none. Two passes of ``any`` (several times faster than ``ndimage.find_objects``)."""
    zy = mask.any(axis=2)
    z = np.flatnonzero(zy.any(axis=1))
    if not z.size:
        return None
    y = np.flatnonzero(zy.any(axis=0))
    x = np.flatnonzero(mask.any(axis=(0, 1)))
    return tuple(slice(int(a[0]), int(a[-1]) + 1) for a in (z, y, x))


def _smoothed_mesh(mask: np.ndarray, spacing: np.ndarray):
    """Vertices and faces of the smoothed surface of ``mask``, or None if it vanishes."""
    n = int(np.count_nonzero(mask))
    r_vox = (3.0 * n / (4.0 * np.pi)) ** (1.0 / 3.0)
    # measured on voxelised spheres of radius 3-40 voxels: sigma = r/12 in [0.5, 1] keeps
    # the area within 3 % from 6 voxels radius up; a fixed 1 voxel shrinks small objects
    sigma = float(np.clip(r_vox / 12.0, 0.5, 1.0))
    padded = np.pad(mask.astype(np.float32), 3)
    smooth = ndi.gaussian_filter(padded, sigma)
    if smooth.max() <= 0.5:
        return None
    verts, faces, _, _ = measure.marching_cubes(smooth, 0.5, spacing=tuple(spacing))
    return verts, faces


def _exposed_face_area(mask: np.ndarray, spacing: np.ndarray) -> float:
    """Area of the voxel faces between the mask and the outside (for objects too small to
    smooth)."""
    padded = np.pad(mask, 1)
    area = 0.0
    face = (spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1])
    for axis in range(3):
        area += np.count_nonzero(np.diff(padded, axis=axis)) * face[axis]
    return area


def _hull_volume(verts: np.ndarray) -> float:
    """Volume of the convex hull of the surface vertices (Qhull; its own line in a profile)."""
    return float(ConvexHull(verts).volume)


def _mesh_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    tri = verts[faces]
    return abs(float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum())) / 6


def _axes_um(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    coords = np.argwhere(mask) * spacing
    cov = np.zeros((3, 3)) if len(coords) == 1 else np.cov(coords, rowvar=False, bias=True)
    # the voxel's own extent (uniform over d: variance d^2/12) completes the moments
    cov = cov + np.diag(spacing**2 / 12.0)
    lam = np.clip(np.linalg.eigvalsh(cov)[::-1], 0, None)
    return 2.0 * np.sqrt(5.0 * lam)


def shape_features(mask: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Morphology of one binary object (volume, area, sphericity, axes, extent, solidity).

    Parameters
    ----------
    mask : (Z, Y, X) bool array
        The object, cropped or not.
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in µm.

    Returns
    -------
    dict
        Keys of the morphology family without the compartment prefix (``volume_um3``...);
        NaN for an empty object.
    """
    spacing = np.asarray(spacing, dtype=float)
    out = dict.fromkeys(_SHAPE, np.nan)
    n = int(np.count_nonzero(mask))
    out["volume_um3"] = n * float(np.prod(spacing))
    if n == 0:
        return out
    mask = np.asarray(mask, dtype=bool)
    mask = mask[_bbox(mask)]
    volume = out["volume_um3"]
    mesh = _smoothed_mesh(mask, spacing)
    if mesh is None:
        area, solidity = _exposed_face_area(mask, spacing), np.nan
    else:
        verts, faces = mesh
        area = float(measure.mesh_surface_area(verts, faces))
        try:
            solidity = _mesh_volume(verts, faces) / _hull_volume(verts)
        except (QhullError, ValueError):
            solidity = np.nan
    axes = _axes_um(mask, spacing)
    out.update(
        surface_area_um2=area,
        sphericity=np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area if area > 0 else np.nan,
        equivalent_diameter_um=(6.0 * volume / np.pi) ** (1.0 / 3.0),
        major_axis_um=axes[0], intermediate_axis_um=axes[1], minor_axis_um=axes[2],
        elongation=axes[0] / axes[2] if axes[2] > 0 else np.nan,
        extent=n / mask.size,
        solidity=min(solidity, 1.0) if np.isfinite(solidity) else np.nan,
    )
    return out


# --------------------------------------------------------------------------- intensity

def ri_features(ri: np.ndarray, mask: np.ndarray, voxel_volume_um3: float,
                medium_index: float = MEDIUM_INDEX,
                alpha: float = ALPHA_ML_PER_G) -> dict[str, float]:
    """RI statistics, dry mass (pg) and dry-mass density (pg/µm³) of the voxels in ``mask``."""
    return _ri_stats(ri[mask].astype(np.float64), voxel_volume_um3, medium_index, alpha)


def _ri_stats(values: np.ndarray, voxel_volume_um3: float, medium_index: float,
              alpha: float) -> dict[str, float]:
    """:func:`ri_features` of the RI values (float64) of a compartment."""
    if values.size == 0:
        out = dict.fromkeys(_RI, np.nan)
        out["dry_mass_pg"] = 0.0
        return out
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    concentration = (values - medium_index) / alpha  # pg/µm³
    return {
        "ri_mean": values.mean(), "ri_sd": values.std(),
        "ri_p10": p10, "ri_p50": p50, "ri_p90": p90,
        "dry_mass_pg": concentration.sum() * voxel_volume_um3,
        "dry_mass_density_pg_per_um3": concentration.mean(),
    }


def _fl_features(values: np.ndarray, in_nucleus: np.ndarray, in_cytoplasm: np.ndarray,
                 voxel_volume: float) -> dict[str, float]:
    """Fluorescence statistics per compartment from one channel's values (float64) in the
    cell and which of them lie in the nucleus and in the cytoplasm."""
    out: dict[str, float] = {}
    for comp, v in (("cell", values), ("nucleus", values[in_nucleus]),
                    ("cytoplasm", values[in_cytoplasm])):
        out[f"{comp}_mean_au"] = v.mean() if v.size else np.nan
        out[f"{comp}_sd_au"] = v.std() if v.size else np.nan
        out[f"{comp}_integrated_au_um3"] = v.sum() * voxel_volume
    total = out["cell_integrated_au_um3"]
    out["nucleus_fraction"] = (out["nucleus_integrated_au_um3"] / total
                               if total != 0 else np.nan)
    return out


# --------------------------------------------------------------------------- texture

_OFFSETS = [o for o in itertools.product((-1, 0, 1), repeat=3)
            if o > (0, 0, 0)]  # 13 directions: one of each opposite pair


def glcm_features(levels: np.ndarray, mask: np.ndarray,
                  n_levels: int = _GLCM_LEVELS) -> dict[str, float]:
    """Haralick features of the 3D grey-level co-occurrence matrix inside ``mask``.

    scikit-image's ``graycomatrix`` is 2D only, so the 3D matrix is counted here over the
    13 unique directions of the 26-neighbourhood (distance 1), symmetrised, and the features
    are averaged over directions, as CellProfiler's MeasureTexture does in 3D.

    Parameters
    ----------
    levels : (Z, Y, X) int array
        Grey levels in ``[0, n_levels)``.
    mask : (Z, Y, X) bool array
        Only pairs with both voxels in the mask count.
    """
    keys = ("glcm_contrast", "glcm_correlation", "glcm_energy", "glcm_homogeneity",
            "glcm_entropy")
    i, j = np.meshgrid(np.arange(n_levels), np.arange(n_levels), indexing="ij")
    acc = {k: [] for k in keys}
    mask = np.asarray(mask, dtype=bool)
    box = _bbox(mask)
    if box is None:
        return dict.fromkeys(keys, np.nan)
    # pairs by flat index into the object's box padded by one voxel (a neighbour never wraps
    # to another row), the work following the object's voxels, not its bounding box; voxels
    # outside the mask take the extra level n_levels, whose column of the counts is dropped
    inside = np.pad(mask[box], 1)
    stride = np.array([inside.shape[1] * inside.shape[2], inside.shape[2], 1])
    flat_levels = np.where(inside, np.pad(np.asarray(levels)[box], 1), n_levels)
    flat_levels = flat_levels.astype(np.int64, copy=False).ravel()
    voxels = np.flatnonzero(inside)
    first = flat_levels[voxels] * (n_levels + 1)
    for off in _OFFSETS:
        codes = first + flat_levels[voxels + int(np.dot(off, stride))]
        counts = np.bincount(codes, minlength=n_levels * (n_levels + 1))
        counts = counts.reshape(n_levels, n_levels + 1)[:, :n_levels]
        if not counts.any():
            continue
        p = (counts + counts.T).astype(np.float64)
        p /= p.sum()
        mu = (i * p).sum()
        var = ((i - mu) ** 2 * p).sum()
        nz = p[p > 0]
        acc["glcm_contrast"].append(((i - j) ** 2 * p).sum())
        acc["glcm_correlation"].append(((i - mu) * (j - mu) * p).sum() / var if var > 0
                                       else 1.0)
        acc["glcm_energy"].append((p**2).sum())
        acc["glcm_homogeneity"].append((p / (1.0 + (i - j) ** 2)).sum())
        acc["glcm_entropy"].append(-(nz * np.log2(nz)).sum())
    return {k: float(np.mean(v)) if v else np.nan for k, v in acc.items()}


def _ri_levels(ri: np.ndarray, medium_index: float) -> np.ndarray:
    """Grey levels of the RI for the GLCM."""
    # fixed RI window relative to the medium, so that grey levels compare across volumes
    width = RI_CLIP[1] - RI_CLIP[0]
    q = ri.astype(np.float64)  # (ri - medium) / width * levels, in place
    q -= medium_index
    q /= width
    q *= _GLCM_LEVELS
    np.floor(q, out=q)
    np.clip(q, 0, _GLCM_LEVELS - 1, out=q)
    return q.astype(np.int64)


def _gradient_mean(ri: np.ndarray, voxels: tuple[np.ndarray, ...],
                   spacing: np.ndarray) -> float:
    """Mean magnitude of the RI gradient at ``voxels`` (index arrays into ``ri``).

    Central differences at those voxels only, with ``ri`` extended by its edge values (a
    crop can be 1 voxel thin): the values ``np.gradient`` of the edge-padded array gives
    there, without the gradient of the whole array.
    """
    padded = np.pad(ri, 1, mode="edge")
    at = np.ravel_multi_index(tuple(v + 1 for v in voxels), padded.shape)
    stride = (padded.shape[1] * padded.shape[2], padded.shape[2], 1)
    padded = padded.ravel()
    sq = 0.0
    for st, step in zip(stride, spacing):
        g = (padded[at + st].astype(np.float64) - padded[at - st].astype(np.float64)) / (2.0 * step)
        sq = sq + g**2
    return float(np.sqrt(sq).mean())


def _texture(ri: np.ndarray, mask: np.ndarray, spacing: np.ndarray,
             medium_index: float, levels: np.ndarray | None = None) -> dict[str, float]:
    levels = _ri_levels(ri, medium_index) if levels is None else levels
    box = _bbox(mask)
    if box is None:
        out = glcm_features(levels, mask)
        out["ri_gradient_mean_per_um"] = np.nan
        return out
    out = glcm_features(levels[box], mask[box])
    # the interior only: the step at the compartment's own boundary is not texture (eroded
    # in the object's box: the same voxels as in the whole crop, the box is tight)
    interior = ndi.binary_erosion(mask[box])
    voxels = np.nonzero(interior if interior.any() else mask[box])
    voxels = tuple(v + s.start for v, s in zip(voxels, box))
    out["ri_gradient_mean_per_um"] = _gradient_mean(ri, voxels, spacing)
    return out


# --------------------------------------------------------------------------- neighbours

def _touching_count(cell_labels: np.ndarray, box: tuple[slice, ...], lab: int) -> int:
    """Other cells sharing a face with cell ``lab``; ``box`` is its bounding box.

    Looked for in the box grown by one voxel, where every face neighbour of the cell lies,
    rather than over the whole label volume.
    """
    grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n))
                  for s, n in zip(box, cell_labels.shape))
    crop = cell_labels[grown]
    other = crop != lab
    other &= crop > 0
    if not other.any():
        return 0
    own = crop == lab
    found = []
    for axis in range(3):
        lo = (slice(None),) * axis + (slice(None, -1),)
        hi = (slice(None),) * axis + (slice(1, None),)
        found.append(crop[hi][own[lo] & other[hi]])  # the neighbour after a voxel of the cell
        found.append(crop[lo][own[hi] & other[lo]])  # the neighbour before
    return len(np.unique(np.concatenate(found)))


def _neighbour_features(centroids: np.ndarray, labels: Sequence[int], touching: Sequence[int],
                        radius_um: float) -> pd.DataFrame:
    r = _radius_tag(radius_um)
    n = len(labels)
    within = np.zeros(n, dtype=np.int64)
    nearest = np.full(n, np.nan)
    if n > 1:
        tree = cKDTree(centroids)
        within = np.array([len(x) - 1 for x in tree.query_ball_point(centroids, radius_um)])
        nearest = tree.query(centroids, k=2)[0][:, 1]
    return pd.DataFrame({
        f"neighbours_within_{r}um_count": within,
        "nearest_neighbour_distance_um": nearest,
        "touching_neighbours_count": np.asarray(touching, dtype=np.int64),
    })


# --------------------------------------------------------------------------- per cell

def _count_components(mask: np.ndarray) -> tuple[int, np.ndarray]:
    box = _bbox(mask)
    if box is None:
        return 0, np.zeros(0, dtype=np.int64)
    lab, n = ndi.label(mask[box], structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:] if n else np.zeros(0, dtype=np.int64)
    return n, sizes


def _measure_one(crop: dict[str, np.ndarray], spacing: np.ndarray, channels: list[str],
                 medium_index: float, alpha: float) -> tuple[dict[str, float], np.ndarray]:
    """Features of one cell from its crop, and its centroid in crop voxels.

    Every compartment mask lies inside the cell mask: intensities are gathered once over the
    cell and each compartment takes its part of them.
    """
    vv = float(np.prod(spacing))
    cell, nucleus = crop["cell"], crop["nucleus"]
    cytoplasm = cell & ~nucleus
    nucleoli, droplets = crop.get("nucleoli"), crop.get("lipid_droplets")
    ri = crop["ri"]
    row: dict[str, float] = {}
    for comp, mask in (("cell", cell), ("nucleus", nucleus)):
        row.update({f"{comp}_{k}": v for k, v in shape_features(mask, spacing).items()})
    cell_vol = row["cell_volume_um3"]
    nuc_vol = row["nucleus_volume_um3"]
    row["cytoplasm_volume_um3"] = cell_vol - nuc_vol
    row["nucleus_to_cell_volume_ratio"] = nuc_vol / cell_vol
    centre = np.argwhere(cell).mean(0)
    if nucleus.any():
        offset = (np.argwhere(nucleus).mean(0) - centre) * spacing
        row["nucleus_offset_um"] = float(np.linalg.norm(offset))
    else:
        row["nucleus_offset_um"] = np.nan
    row["nucleus_count"] = _count_components(nucleus)[0]
    if nucleoli is not None:
        count, sizes = _count_components(nucleoli)
        row["nucleolus_count"] = count
        row["nucleoli_volume_um3"] = sizes.sum() * vv
        row["nucleolus_mean_volume_um3"] = sizes.mean() * vv if count else np.nan
        row["nucleoli_to_nucleus_volume_ratio"] = (sizes.sum() * vv / nuc_vol if nuc_vol
                                                   else np.nan)
    else:
        row.update(dict.fromkeys(("nucleolus_count", "nucleoli_volume_um3",
                                  "nucleolus_mean_volume_um3",
                                  "nucleoli_to_nucleus_volume_ratio"), np.nan))
    ri_cell = ri[cell].astype(np.float64)
    compartments = {"cell": cell, "nucleus": nucleus, "cytoplasm": cytoplasm,
                    "nucleoli": nucleoli}
    for comp, mask in compartments.items():
        if mask is None:
            feats = dict.fromkeys(_RI, np.nan)
        elif mask is cell:
            feats = _ri_stats(ri_cell, vv, medium_index, alpha)
        else:
            feats = _ri_stats(ri_cell[mask[cell]], vv, medium_index, alpha)
        row.update({f"{comp}_{k}": v for k, v in feats.items()})
    in_nucleus, in_cytoplasm = nucleus[cell], cytoplasm[cell]
    for ch in channels:
        if f"fl:{ch}" in crop:
            feats = _fl_features(crop[f"fl:{ch}"][cell].astype(np.float64), in_nucleus,
                                 in_cytoplasm, vv)
        else:
            feats = dict.fromkeys(_fl_features(np.zeros(0), *(np.zeros(0, bool),) * 2, vv),
                                  np.nan)
        row.update({f"{k.split('_', 1)[0]}_{ch}_{k.split('_', 1)[1]}": v
                    for k, v in feats.items()})
    if droplets is not None:
        count, sizes = _count_components(droplets)
        ld = _ri_stats(ri_cell[droplets[cell]], vv, medium_index, alpha)
        row.update({
            "lipid_droplet_count": count,
            "lipid_droplets_volume_um3": sizes.sum() * vv,
            "lipid_droplet_mean_volume_um3": sizes.mean() * vv if count else np.nan,
            "lipid_droplets_volume_fraction": sizes.sum() * vv / cell_vol,
            "lipid_droplets_dry_mass_pg": ld["dry_mass_pg"],
            "lipid_droplets_ri_mean": ld["ri_mean"],
        })
    else:
        row.update(dict.fromkeys((
            "lipid_droplet_count", "lipid_droplets_volume_um3", "lipid_droplet_mean_volume_um3",
            "lipid_droplets_volume_fraction", "lipid_droplets_dry_mass_pg",
            "lipid_droplets_ri_mean"), np.nan))
    levels = _ri_levels(ri, medium_index)
    for comp, mask in (("cell", cell), ("nucleus", nucleus)):
        row.update({f"{comp}_{k}": v
                    for k, v in _texture(ri, mask, spacing, medium_index, levels).items()})
    return row, centre


def _organelle_mask(name: str, masks: Mapping[str, np.ndarray] | None,
                    channels: Mapping[str, np.ndarray], threshold: float):
    """A binary organelle mask: the given one, else the thresholded fluorescence channel."""
    if masks is not None and masks.get(name) is not None:
        return np.asarray(masks[name], dtype=bool)
    if name in channels:
        return np.asarray(channels[name]) > threshold
    return None


def measure_cells(ri: np.ndarray, cell_labels: np.ndarray,
                  nucleus_labels: np.ndarray | None = None,
                  fl: Mapping[str, np.ndarray] | np.ndarray | None = None,
                  voxel_size_um: float | Sequence[float] = (0.2, 0.15, 0.15),
                  medium_index: float = MEDIUM_INDEX, alpha: float = ALPHA_ML_PER_G,
                  masks: Mapping[str, np.ndarray] | None = None, *,
                  fl_threshold: float = 0.5, neighbour_radius_um: float = 20.0,
                  channels: Sequence[str] | None = None,
                  uncertainty: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Measure every cell of a labelled volume: one row per cell, one column per feature.

    Parameters
    ----------
    ri : (Z, Y, X) array
        Refractive index (absolute, e.g. 1.33-1.42).
    cell_labels : (Z, Y, X) int array
        Cell instances (0 = background).
    nucleus_labels : (Z, Y, X) int array, optional
        Nucleus instances or a binary nucleus mask; only the voxels inside each cell count
        for that cell. Without it the nucleus features are NaN (volumes and masses 0).
    fl : dict of name -> (Z, Y, X) array, or (C, Z, Y, X) array, optional
        Fluorescence on the RI grid (inferred or measured). An array's channels are taken
        in the order of :data:`ri2fl.constants.TARGETS`.
    voxel_size_um : float or (z, y, x)
        Voxel size in µm.
    medium_index : float
        Refractive index of the medium (1.337 culture medium, 1.335 PBS).
    alpha : float
        Refractive-index increment in mL/g (= µm³/pg), 0.190 at 532 nm.
    masks : dict of name -> (Z, Y, X) bool array, optional
        Organelle masks; ``"nucleolus"`` and ``"lipid_droplets"`` are used. Where missing,
        the fluorescence channel of that name thresholded at ``fl_threshold`` stands in.
    fl_threshold : float
        Threshold on the quantitative fluorescence scale (about [0, 1]) for the fallback.
    neighbour_radius_um : float
        Radius of the neighbour count.
    channels : sequence of str, optional
        Names of the fluorescence columns to write; defaults to the six targets, so that
        tables from any input have the same columns (NaN where a channel is absent).
    uncertainty : dict of name -> (Z, Y, X) array, optional
        Voxel-wise inference uncertainty per channel (e.g. the TTA or MC-dropout s.d.);
        its mean in each cell becomes a quality column (not a feature).

    Returns
    -------
    pandas.DataFrame
        One row per cell label (ascending), columns as in :func:`feature_dictionary`.

    Examples
    --------
    >>> table = measure_cells(ri, seg.cell_labels, seg.nucleus_labels, pred.fl,
    ...                       (0.2, 0.15, 0.15))  # doctest: +SKIP
    >>> table[["cell_volume_um3", "cell_dry_mass_pg"]].describe()  # doctest: +SKIP
    """
    ri = np.asarray(ri)
    if ri.ndim != 3:
        raise InputError(f"RI must be a (Z, Y, X) volume, got shape {ri.shape}", "ri")
    shape = ri.shape
    cell_labels = np.asarray(cell_labels)
    _check_same_shape("cell_labels", cell_labels, shape)
    _check_same_shape("nucleus_labels", nucleus_labels, shape)
    if not np.issubdtype(cell_labels.dtype, np.integer):
        cell_labels = cell_labels.astype(np.int64)
    spacing = _as_spacing(voxel_size_um)
    fl_channels = _as_channels(fl, shape)
    names = list(channels) if channels is not None else list(TARGETS)
    names += [c for c in fl_channels if c not in names]
    for name, m in (masks or {}).items():
        _check_same_shape(f"masks[{name!r}]", m, shape)
    for name, m in (uncertainty or {}).items():
        _check_same_shape(f"uncertainty[{name!r}]", m, shape)
    nucleus_labels = None if nucleus_labels is None else np.asarray(nucleus_labels)
    nucleoli = _organelle_mask("nucleolus", masks, fl_channels, fl_threshold)
    droplets = _organelle_mask("lipid_droplets", masks, fl_channels, fl_threshold)

    slices = ndi.find_objects(cell_labels)
    labels = [i + 1 for i, s in enumerate(slices) if s is not None]
    columns = list(feature_dictionary(names, neighbour_radius_um)["name"])
    if not labels:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    rows, centroids, touching = [], [], []
    for lab in progress(labels, desc="measuring cells"):
        sl = slices[lab - 1]
        cell = cell_labels[sl] == lab
        nucleus = ((nucleus_labels[sl] > 0) & cell if nucleus_labels is not None
                   else np.zeros_like(cell))
        crop = {"cell": cell, "nucleus": nucleus, "ri": ri[sl]}
        if nucleoli is not None:
            crop["nucleoli"] = nucleoli[sl] & crop["nucleus"]
        if droplets is not None:
            crop["lipid_droplets"] = droplets[sl] & cell
        for ch in fl_channels:
            crop[f"fl:{ch}"] = np.asarray(fl_channels[ch][sl])
        row, centre = _measure_one(crop, spacing, names, medium_index, alpha)
        for ch in names:
            u = (uncertainty or {}).get(ch)
            row[f"cell_{ch}{UNCERTAINTY_SUFFIX}"] = (float(np.mean(np.asarray(u[sl])[cell]))
                                                     if u is not None else np.nan)
        offset = np.array([s.start for s in sl])
        centroid = (centre + offset) * spacing
        centroids.append(centroid)
        touching.append(_touching_count(cell_labels, sl, lab))
        row.update(label=lab, centroid_z_um=centroid[0], centroid_y_um=centroid[1],
                   centroid_x_um=centroid[2],
                   cut_by_edge=any(s.start == 0 or s.stop == n for s, n in zip(sl, shape)))
        rows.append(row)
    table = pd.DataFrame(rows)
    neighbours = _neighbour_features(np.array(centroids), labels, touching,
                                     neighbour_radius_um)
    table = pd.concat([table, neighbours], axis=1)
    table["label"] = table["label"].astype(np.int64)
    table["cut_by_edge"] = table["cut_by_edge"].astype(bool)
    return table[columns]
