"""``ri2fl simulate`` draws procedural cells and random instruments, and keeps old seeds."""

from __future__ import annotations

import json

import h5py
import pandas as pd
import pytest

from ri2fl.cli.main import main
from ri2fl.simulate.dataset import sample_seed


def test_family_seeds_do_not_move_when_procedural_cells_join():
    # data sets made before procedural cells existed must simulate again to the same fields
    assert sample_seed(0, "fibroblast", 3) == 3
    assert sample_seed(1, "hek293", 0) == 1_200_000
    assert sample_seed(0, "procedural", 0) == 800_000


@pytest.mark.timeout(120)
def test_random_instruments_are_recorded_per_field(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["--quiet", "simulate", "-o", str(out), "--cell-types", "procedural",
                 "--n", "2", "--shape", "24", "96", "96", "--domain", "random"]) == 0
    table = pd.read_csv(out / "manifest.csv")
    assert table["cell_type"].tolist() == ["procedural", "procedural"]
    domains = []
    for rel in table["path"]:
        with h5py.File(out / rel) as f:
            domains.append(json.loads(f.attrs["imaging_domain"]))
    assert domains[0] != domains[1]  # one instrument drawn per field
    assert all(0.45 <= d["wavelength_um"] <= 0.65 for d in domains)


def test_random_instruments_need_the_fast_tomograph(tmp_path, capsys):
    rc = main(["simulate", "-o", str(tmp_path / "x"), "--physics", "physical",
               "--domain", "random"])
    assert rc == 2
    assert "--domain random needs the fast tomograph" in capsys.readouterr().err


def test_training_sets_can_mix_families_procedural_cells_and_random_instruments():
    from ri2fl.errors import ConfigError
    from ri2fl.simulate.sets import plan_fields

    fields = plan_fields(["hek293", "procedural"], train=2, val=1, shape=(24, 96, 96),
                         domain="random")
    assert [f.cell_type for f in fields] == ["hek293"] * 3 + ["procedural"] * 3
    assert all(f.options == {"domain": "random"} for f in fields)
    assert plan_fields(["hek293"], train=1)[0].options == {}  # the default instrument
    with pytest.raises(ConfigError, match="no mitotic variant"):
        plan_fields(["procedural"], mitotic_train=1)
    with pytest.raises(ConfigError, match="unknown imaging domain"):
        plan_fields(["hek293"], train=1, domain="wild")


def test_a_recipe_data_set_takes_the_random_instrument():
    from ri2fl.train.recipe import Fields

    assert Fields(cell_types=("procedural",), train=4, domain="random").domain == "random"
