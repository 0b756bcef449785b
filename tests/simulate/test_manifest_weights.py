"""Manifest weights steer how often training draws each simulated field."""

from __future__ import annotations

import csv

import h5py

from ri2fl.simulate.sets import FieldSpec, write_manifest


def test_mitotic_and_default_tomograph_fields_are_drawn_more_often(tmp_path):
    fields = [FieldSpec("fibroblast", "train", seed) for seed in range(3)]
    attrs = [{"variants": "mitotic"},                           # default tomograph, mitotic
             {"variants": "", "imaging_domain": "{}"},           # a drawn instrument
             {"variants": "", "imaging_domain": "{}"}]
    for spec, extra in zip(fields, attrs):
        with h5py.File(tmp_path / spec.file, "w") as f:
            f.attrs.update(extra)
    path = write_manifest(tmp_path, fields, "weighted.csv", mitotic_weight=4,
                          default_tomograph_weight=3)
    weights = [float(row["weight"]) for row in csv.DictReader(path.read_text().splitlines())]
    assert weights == [12.0, 1.0, 1.0]  # the two weights multiply
    plain = write_manifest(tmp_path, fields, "plain.csv")
    assert "weight" not in next(csv.DictReader(plain.read_text().splitlines()))
