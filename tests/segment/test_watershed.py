"""Classical cell route: voxel classifier + nucleus threshold + seeded watershed."""

from __future__ import annotations

import numpy as np
import pytest
from segment_phantoms import VS, make_phantom, sparse_classes, two_touching

from ri2fl.errors import ConfigError
from ri2fl.evaluate.metrics import match_instances
from ri2fl.preprocess import normalize_ri
from ri2fl.segment import VoxelClassifier, nucleus_instances, watershed_cells


def run(clf, ph):
    if clf.channels == ("ri",):
        x = normalize_ri(ph.ri, 1.337)[None]
        membrane = None
    else:
        x = np.stack([ph.fl[c] for c in clf.channels])
        membrane = x[1]
    return watershed_cells(clf.predict_proba(x), VS, membrane=membrane)


@pytest.mark.parametrize("which", ["fl_classifier", "ri_classifier"])
def test_touching_cells_are_separated(which, request):
    ph = two_touching(seed=3)
    cells, nuclei = run(request.getfixturevalue(which), ph)
    m = match_instances(ph.cell_labels, cells)
    assert m.n_pred == 2 and m.f1 == 1.0 and m.mean_matched_iou > 0.8
    # each cell holds exactly its own nucleus
    for i in (1, 2):
        assert set(np.unique(nuclei[cells == i])) == {0, i}


def test_cell_cut_by_field_edge(fl_classifier):
    ph = make_phantom([((4.0, 9.6, 1.2), (3.0, 6.0, 6.0), (2.0, 2.4, 2.4))], seed=4)
    cells, nuclei = run(fl_classifier, ph)
    assert cells.max() == 1 and nuclei.max() == 1
    assert cells[:, :, 0].any()  # it reaches the edge, as the truth does
    assert match_instances(ph.cell_labels, cells).mean_matched_iou > 0.8


def test_no_nucleus_gives_no_cell(fl_classifier, ri_classifier):
    ph = make_phantom([((4.0, 9.6, 9.6), (3.0, 6.0, 6.0), None)], seed=5)
    for clf in (fl_classifier, ri_classifier):
        cells, nuclei = run(clf, ph)
        assert cells.max() == 0 and nuclei.max() == 0
    empty = make_phantom([], seed=6)
    assert run(fl_classifier, empty)[0].max() == 0


def test_mitotic_cell_is_one_cell(fl_classifier):
    # condensed chromosomes in a metaphase plate: several fragments, no envelope
    plate = [(4.0, y, x) for y, x in ((8.8, 8.8), (10.4, 9.0), (9.0, 10.4), (10.6, 10.6))]
    ph = make_phantom([((4.0, 9.6, 9.6), (3.2, 6.0, 6.0), (2.0, 2.4, 2.4))], seed=7,
                      chromosomes=[(1, plate)])
    cells, nuclei = run(fl_classifier, ph)
    assert cells.max() == 1 and nuclei.max() == 1
    assert match_instances(ph.cell_labels, cells).f1 == 1.0  # matched at IoU >= 0.5
    assert (cells[ph.nucleus_labels > 0] == 1).mean() > 0.9  # the chromosomes are inside


def test_nucleus_instances_merge_fragments_and_drop_specks():
    mask = np.zeros((20, 40, 40), bool)
    mask[8:12, 10:14, 5:9] = True
    mask[8:12, 10:14, 10:14] = True  # 0.3 µm gap from the first: same nucleus
    mask[8:12, 30:34, 30:34] = True  # far away: another one
    mask[2, 2, 2] = True  # a speck far below 200 canonical voxels
    lab = nucleus_instances(mask, VS, min_voxels=50, merge_gap_um=1.0)
    assert lab.max() == 2 and lab[2, 2, 2] == 0
    assert lab[10, 12, 6] == lab[10, 12, 12] != lab[10, 32, 32]
    # without merging the fragments are two nuclei
    assert nucleus_instances(mask, VS, min_voxels=50, merge_gap_um=0).max() == 3


def test_classifier_roundtrip_and_label_check(fl_classifier, tmp_path):
    again = VoxelClassifier.load(fl_classifier.save(tmp_path / "voxel.npz"))
    ph = two_touching(seed=8)
    x = np.stack([ph.fl["nucleus"], ph.fl["membrane"]])
    np.testing.assert_allclose(again.predict_proba(x), fl_classifier.predict_proba(x), atol=1e-6)
    from ri2fl.segment import train_voxel_classifier

    with pytest.raises(ConfigError):
        train_voxel_classifier([x], [np.full(x.shape[1:], 5, np.int8)])


def test_intensity_scaled_training_copes_with_denser_cells(training_phantoms):
    from ri2fl.segment import train_voxel_classifier

    rng = np.random.default_rng(2)
    vols = [normalize_ri(p.ri, 1.337)[None] for p in training_phantoms]
    labs = [sparse_classes(p, rng) for p in training_phantoms]
    plain = train_voxel_classifier(vols, labs, ("ri",), VS, n_estimators=10)
    scaled = train_voxel_classifier(vols, labs, ("ri",), VS, n_estimators=10,
                                    intensity_scale=(0.5, 2.5))
    # a cell twice as dense as any seen in training (all RI contrasts doubled)
    ph = two_touching(seed=9)
    dense = np.clip(2 * normalize_ri(ph.ri, 1.337), 0, 1)[None]
    f1 = {name: match_instances(ph.cell_labels,
                                watershed_cells(clf.predict_proba(dense), VS)[0]).f1
          for name, clf in (("plain", plain), ("scaled", scaled))}
    assert f1["scaled"] == 1.0
    assert scaled.intensity_scale == (0.5, 2.5)


def test_a_dimly_inferred_nucleus_still_seeds_its_cell(fl_classifier):
    # the fluorescence model paints small crowded nuclei dimmer than the forest learnt
    ph = two_touching(seed=3)
    x = np.stack([ph.fl[c] for c in fl_classifier.channels])
    x[0][ph.nucleus_labels == 2] = 0.35  # the other nucleus holds 0.82 on average
    proba = fl_classifier.predict_proba(x)
    alone, _ = watershed_cells(proba, VS, membrane=x[1])
    assert match_instances(ph.cell_labels, alone).n_pred == 1  # the forest missed it
    cells, nuclei = watershed_cells(proba, VS, membrane=x[1], nucleus_fl=x[0])
    m = match_instances(ph.cell_labels, cells)
    assert m.n_pred == 2 and m.f1 == 1.0
    assert nuclei.max() == 2


def test_fluorescence_seeds_keep_away_from_nuclei_small_blobs_and_the_medium():
    from ri2fl.segment.watershed import fluorescence_seeds

    vs = (0.4, 0.3, 0.3)
    shape = (20, 60, 60)
    zz, yy, xx = np.indices(shape) * np.array(vs)[:, None, None, None]

    def ball(c, r):
        return (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r**2

    nuclei = ball((4, 4.5, 4.5), 1.5).astype(np.int32)
    foreground = np.zeros(shape, bool)
    foreground[:, :, :40] = True
    fl = np.zeros(shape, np.float32)
    for c, r in (((4, 9, 9), 1.6),      # a missed nucleus: added
                 ((4, 4.5, 6.0), 1.6),  # on the classified nucleus: left to it
                 ((4, 14, 4), 0.6),     # too small: not added
                 ((4, 14, 15), 1.6)):   # outside the cells: not added
        fl[ball(c, r)] = 0.5
    out = fluorescence_seeds(fl, nuclei, foreground, vs)
    assert out.max() == 2
    assert out[ball((4, 9, 9), 1.0)].min() == 2
    np.testing.assert_array_equal(out[nuclei > 0], 1)
    assert out.dtype == np.int32 and nuclei.max() == 1  # the input is left alone
