"""Do features measured on inferred fluorescence agree with those on the real one?

The paper (Jo et al. 2021) computed its single-cell features once from inferred and once
from measured fluorescence and found r = 0.97 over all features and channels. Here the same
cells (the same instance labels) are measured twice, with the true and the inferred
fluorescence, and only the features that depend on fluorescence are compared: the
fluorescence family, and the lipid-droplet and nucleolus features whose masks come from the
thresholded fluorescence channels.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from ..constants import TARGETS
from ..evaluate import pcc
from .features import feature_dictionary, measure_cells


def fluorescence_dependent_features(channels: Sequence[str] | None = None) -> list[str]:
    """Names of the features whose value depends on the fluorescence channels."""
    d = feature_dictionary(**({"channels": channels} if channels is not None else {}))
    fl_family = d["family"].isin(["fluorescence", "lipid droplets"])
    nucleolar = d["name"].str.startswith(("nucleolus_", "nucleoli_"))
    return list(d.loc[fl_family | nucleolar, "name"])


def measure_pair(ri: np.ndarray, cell_labels: np.ndarray, nucleus_labels: np.ndarray,
                 fl_true: Mapping[str, np.ndarray], fl_inferred: Mapping[str, np.ndarray],
                 voxel_size_um: Sequence[float], medium_index: float,
                 **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same cells measured with the true and with the inferred fluorescence.

    Organelle masks are not passed, so lipid droplets and nucleoli come from each
    fluorescence (thresholded) and their features are compared too.
    """
    kwargs = {"voxel_size_um": voxel_size_um, "medium_index": medium_index, **options}
    true = measure_cells(ri, cell_labels, nucleus_labels, dict(fl_true), **kwargs)
    inferred = measure_cells(ri, cell_labels, nucleus_labels, dict(fl_inferred), **kwargs)
    return true, inferred


def feature_agreement(true: pd.DataFrame, inferred: pd.DataFrame,
                      features: Sequence[str] | None = None) -> tuple[float, pd.DataFrame]:
    """Pooled and per-feature Pearson correlation between two tables of the same cells.

    Each feature is z-scored within each table (so features of every unit pool together,
    as they do in the z-scored analyses downstream: a uniform intensity scale of the
    inferred channels does not count as disagreement), and the correlation is taken over
    all (cell, feature) pairs: the paper's "over all features and channels".

    Parameters
    ----------
    true, inferred : pandas.DataFrame
        Tables of the same cells in the same order (e.g. from :func:`measure_pair`).
    features : sequence of str, optional
        Columns to compare (default: :func:`fluorescence_dependent_features`).

    Returns
    -------
    r : float
        Pooled Pearson correlation.
    per_feature : pandas.DataFrame
        ``feature``, ``r``, ``n`` for every feature with spread in both tables.
    """
    if len(true) != len(inferred):
        raise ValueError("the two tables must hold the same cells")
    cols = [c for c in (features or fluorescence_dependent_features())
            if c in true.columns and c in inferred.columns]
    za, sd_a = _zscored(true, cols)
    zb, sd_b = _zscored(inferred, cols)
    keep = np.isfinite(sd_a) & (sd_a > 0) & np.isfinite(sd_b) & (sd_b > 0)
    za, zb = za[:, keep], zb[:, keep]
    ok = np.isfinite(za) & np.isfinite(zb)
    r = pcc(za[ok], zb[ok], min_std=0.0) if ok.sum() > 2 else float("nan")
    rows = []
    for j, name in enumerate(np.asarray(cols)[keep]):
        m = ok[:, j]
        if m.sum() > 2 and np.std(zb[m, j]) > 0:
            rows.append((name, pcc(za[m, j], zb[m, j], min_std=0.0), int(m.sum())))
    return r, pd.DataFrame(rows, columns=["feature", "r", "n"])


def _zscored(table: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each column of ``table`` z-scored over its non-missing cells, and its s.d."""
    values = table[list(cols)].astype(float).to_numpy()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mu, sd = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        return (values - mu) / sd, sd


def channel_agreement(fl_true: Mapping[str, np.ndarray], fl_inferred: Mapping[str, np.ndarray],
                      cell_labels: np.ndarray) -> dict[str, float]:
    """Voxel-wise Pearson r of each inferred channel with the truth, inside the cells."""
    inside = np.asarray(cell_labels) > 0
    out = {}
    for name, truth in fl_true.items():
        if name in fl_inferred and inside.any():
            a = np.asarray(truth)[inside].astype(np.float64)
            b = np.asarray(fl_inferred[name])[inside].astype(np.float64)
            out[name] = pcc(a, b, min_std=0.0) if a.std() > 0 and b.std() > 0 else np.nan
    return out


#: Blur widths (µm, isotropic) tried when matching the truth to an inferred channel.
BLUR_SIGMAS_UM = (0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8)


def matching_blur_um(fl_true: Mapping[str, np.ndarray], fl_inferred: Mapping[str, np.ndarray],
                     cell_labels: np.ndarray, voxel_size_um: Sequence[float],
                     sigmas_um: Sequence[float] = BLUR_SIGMAS_UM) -> dict[str, float]:
    """The Gaussian blur of the truth that best matches each inferred channel.

    For each channel, the width (µm, the same along every axis) at which the blurred true
    fluorescence has the highest voxel-wise Pearson r with the inferred one inside the
    cells: the resolution the network delivers for that channel.
    """
    inside = np.asarray(cell_labels) > 0
    best = {}
    for name, truth in fl_true.items():
        if name not in fl_inferred or not inside.any():
            continue
        inferred = np.asarray(fl_inferred[name])[inside]
        scores = [pcc(blur_channels({name: truth}, s, voxel_size_um)[name][inside],
                      inferred, min_std=0.0) for s in sigmas_um]
        best[name] = float(sigmas_um[int(np.nanargmax(scores))])
    return best


def blur_channels(fl: Mapping[str, np.ndarray], sigma_um: float | Mapping[str, float],
                  voxel_size_um: Sequence[float]) -> dict[str, np.ndarray]:
    """Each channel blurred by a Gaussian of ``sigma_um`` (one width, or one per channel)."""
    out = {}
    for name, volume in fl.items():
        s = sigma_um.get(name, 0.0) if isinstance(sigma_um, Mapping) else sigma_um
        sigma = [s / v for v in voxel_size_um]
        out[name] = (ndimage.gaussian_filter(np.asarray(volume, np.float32), sigma)
                     if s > 0 else np.asarray(volume, np.float32))
    return out


_COMPARTMENTS = ("cell_", "nucleus_", "cytoplasm_")


def _channel_of(feature: str, channels: Sequence[str]) -> str:
    if feature.startswith(("lipid_droplet_", "lipid_droplets_")):
        return "lipid_droplets"
    if feature.startswith(("nucleolus_", "nucleoli_")):
        return "nucleolus"
    # "<compartment>_<channel>_<statistic>": the compartment may itself be a channel's name
    rest = next((feature[len(c):] for c in _COMPARTMENTS if feature.startswith(c)), feature)
    return next((c for c in channels if f"_{c}_" in f"_{rest}_"), "")


#: (compartment, channel) pairs where the structure is absent in truth: their features
#: measure the channel's blur and leakage into that compartment, not the structure.
_OFF_COMPARTMENT = {"nucleus": ("membrane", "actin", "mitochondria", "lipid_droplets"),
                    "cytoplasm": ("nucleus", "nucleolus")}


def _off_compartment(feature: str, channel: str) -> str | None:
    compartment = feature.split("_", 1)[0]
    return compartment if channel in _OFF_COMPARTMENT.get(compartment, ()) else None


#: Features computed from a mask thresholded from a channel, not from its intensities.
_THRESHOLDED = ("lipid_droplet", "nucleolus_count", "nucleoli_volume", "nucleolus_mean",
                "nucleoli_to_nucleus", "nucleoli_ri", "nucleoli_dry_mass")


def explain_agreement(true: pd.DataFrame, inferred: pd.DataFrame,
                      per_feature: pd.DataFrame, *, goal: float = 0.9,
                      channel_r: Mapping[str, float] | None = None,
                      channels: Sequence[str] = TARGETS,
                      blurred: pd.DataFrame | None = None,
                      stain_free: pd.DataFrame | None = None,
                      groups: Mapping[str, Sequence] | None = None,
                      min_present: float = 0.5, max_spread: float = 0.15,
                      max_group_share: float = 0.5) -> pd.DataFrame:
    """Per-feature agreement with its feature family, channel, and, below ``goal``, a cause.

    Causes, tested in this order:

    - ``sparsity``: fewer than ``min_present`` of the cells have the structure in the
      truth (a non-zero, non-missing value), so r rests on a few cells;
    - ``resolution``: the same cells measured on the truth blurred to the resolution the
      network delivers (``blurred``, from :func:`matching_blur_um` and
      :func:`blur_channels`) already miss the goal: the feature rests on detail finer
      than the inferred channel resolves (thin membranes, leakage across compartments);
    - ``stain brightness``: the same cells measured on the truth without its cell-to-cell
      stain brightness (``stain_free``, e.g. ``simulate_fov(..., uniform_stain=True)``)
      already miss the goal: the feature's spread over cells is largely how brightly each
      cell was stained, which the RI does not carry;
    - ``threshold``: the feature comes from a mask thresholded from the channel (lipid
      droplets, nucleoli);
    - ``off-compartment``: the channel in a compartment where its structure is absent in
      truth (membrane, actin, mitochondria or droplets inside the nucleus; nucleus or
      nucleolus in the cytoplasm): the feature measures blur and leakage;
    - ``channel error``: the channel itself is inferred poorly (its voxel-wise r in
      ``channel_r``, or the median r of its intensity features, is below ``goal``);
    - ``<group> offset``: more than ``max_group_share`` of the error (inferred minus true,
      both z-scored) is shared by the cells of a group in ``groups`` (e.g. a field or a
      cell type): the inferred level moves with the group, not with the cell;
    - ``little spread``: the cells hardly differ in the feature (coefficient of variation
      of the true values below ``max_spread``), so errors small against its level still
      swamp the correlation over cells;
    - ``cell-to-cell error``: none of these, with all three controls given: the network
      errs cell by cell, at the resolution it has;
    - ``other``: none of these, and a control was not given (the demo runs none: its
      cells are too many to simulate twice within its time).

    Parameters
    ----------
    true, inferred : pandas.DataFrame
        The same cells measured on true and on inferred fluorescence.
    per_feature : pandas.DataFrame
        ``feature``, ``r``, ``n`` from :func:`feature_agreement`.
    goal : float
        The r a feature should reach.
    channel_r : mapping, optional
        Voxel-wise r per channel (:func:`channel_agreement`).
    blurred : pandas.DataFrame, optional
        The same cells measured on the blurred truth.
    stain_free : pandas.DataFrame, optional
        The same cells measured on the truth with every cell stained equally brightly.
    groups : mapping of str to sequence, optional
        Named groupings of the cells, e.g. ``{"field": ..., "cell type": ...}``.

    Returns
    -------
    pandas.DataFrame
        ``per_feature`` with ``family``, ``channel``, ``present`` (fraction of cells with the
        structure), ``true_cv``, ``r_blurred_truth``, ``r_stain_free_truth``,
        ``r_inferred_stain_free`` (the inferred against the stain-free truth) and one
        ``<group>_share`` per group (NaN without their control), and ``cause`` ("" when the
        feature reaches the goal).
    """
    families = dict(feature_dictionary(channels)[["name", "family"]].to_numpy())
    out = per_feature.copy()
    names = list(out["feature"])
    out["family"] = [families.get(f, "other") for f in names]
    out["channel"] = [_channel_of(f, channels) for f in names]
    values = true[names].astype(float)
    out["present"] = ((values.fillna(0) != 0).mean()).to_numpy()
    level = values.mean().abs().replace(0, np.nan)
    out["true_cv"] = (values.std() / level).to_numpy()
    error = ((inferred[names].astype(float) - values).abs().median() / level).to_numpy()
    out["r_blurred_truth"] = (_per_feature_r(true, blurred, names) if blurred is not None
                              else np.nan)
    out["r_stain_free_truth"] = (_per_feature_r(true, stain_free, names)
                                 if stain_free is not None else np.nan)
    out["r_inferred_stain_free"] = (_per_feature_r(stain_free, inferred, names)
                                    if stain_free is not None else np.nan)
    groups = dict(groups or {})
    for group, members in groups.items():
        out[_share_column(group)] = _group_share(true, inferred, names, members)
    intensity = out[out["family"] == "fluorescence"].groupby("channel")["r"].median()
    channel_ok = {c: (channel_r or {}).get(c, intensity.get(c, np.nan)) for c in channels}
    controlled = blurred is not None and stain_free is not None and bool(groups)
    causes = []
    for i, row in enumerate(out.itertuples(index=False)):
        shares = {g: getattr(row, _share_column(g)) for g in groups}
        group = max(shares, key=shares.get, default=None)
        ch_r = channel_ok.get(row.channel, np.nan)
        if row.r >= goal:
            causes.append("")
        elif row.present < min_present:
            causes.append(f"sparsity ({row.present:.0%} of cells have it)")
        elif row.r_blurred_truth < goal:
            causes.append(f"resolution (the truth blurred to the channel's resolution "
                          f"alone gives r = {row.r_blurred_truth:.2f})")
        elif row.r_stain_free_truth < goal:
            causes.append(f"stain brightness (each cell's stain brightness, which the RI "
                          f"does not carry, alone gives r = {row.r_stain_free_truth:.2f}; "
                          f"against the stain-free truth r = "
                          f"{row.r_inferred_stain_free:.2f})")
        elif row.feature.startswith(_THRESHOLDED):
            causes.append("threshold (mask from the channel at 0.5)")
        elif (where := _off_compartment(row.feature, row.channel)) is not None:
            causes.append(f"off-compartment (no {row.channel} in the {where} in truth: "
                          f"blur and leakage)")
        elif np.isfinite(ch_r) and ch_r < goal:
            causes.append(f"channel error ({row.channel} r = {ch_r:.2f})")
        elif group is not None and shares[group] > max_group_share:
            causes.append(f"{group} offset ({shares[group]:.0%} of the error is shared by "
                          f"the cells of a {group})")
        elif row.true_cv < max_spread:
            causes.append(f"little spread across cells (CV {row.true_cv:.0%}; median error "
                          f"{error[i]:.0%} of the mean)")
        elif controlled:
            causes.append(f"cell-to-cell error of the {row.channel or 'inferred'} channel "
                          f"(median {error[i]:.0%} of the mean; not blur, not stain "
                          f"brightness, not a {' or '.join(groups)} offset)")
        else:
            missing = [name for name, given in (("blurred", blurred is not None),
                                                ("stain_free", stain_free is not None),
                                                ("groups", bool(groups))) if not given]
            causes.append(f"other (not told apart without the controls "
                          f"{', '.join(missing)}; scripts/validate_features.py runs them)")
    out["cause"] = causes
    return out


def _per_feature_r(true: pd.DataFrame, other: pd.DataFrame, names: Sequence[str]) -> list:
    _, per = feature_agreement(true, other, names)
    return list(per.set_index("feature")["r"].reindex(names))


def _share_column(group: str) -> str:
    return f"{group.replace(' ', '_')}_share"


def _group_share(true: pd.DataFrame, inferred: pd.DataFrame, names: Sequence[str],
                 members: Sequence) -> list[float]:
    """Share of each feature's error (z-scored inferred minus true) between groups."""
    error = pd.DataFrame(_zscored(inferred, names)[0] - _zscored(true, names)[0],
                         columns=list(names))
    means = error.groupby(np.asarray(members)).transform("mean")
    between = (means - error.mean()).pow(2).where(error.notna()).sum()
    total = (error - error.mean()).pow(2).sum()
    return list((between / total.replace(0, np.nan)).to_numpy())


def agreement_summary(explained: pd.DataFrame, goal: float = 0.9) -> pd.DataFrame:
    """Median and spread of the per-feature r per feature family and per channel."""
    rows = []
    for key in ("family", "channel"):
        for name, sub in explained.groupby(key, sort=True):
            r = sub["r"]
            rows.append({"by": key, "group": name or "(none)", "features": len(sub),
                         "median_r": r.median(), "q25_r": r.quantile(0.25),
                         "min_r": r.min(), f"below_{goal:g}": int((r < goal).sum())})
    return pd.DataFrame(rows)
