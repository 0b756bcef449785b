"""Recipes of the shipped models, typed configurations, ``ri2fl models``, the cell task."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ri2fl.cli.main import main
from ri2fl.errors import ConfigError
from ri2fl.io import PairedSample, write_paired
from ri2fl.models import available, load, read_checkpoint, sha256_file
from ri2fl.models.checkpoint import WEIGHTS_DIR
from ri2fl.train import DEFAULTS, load_config
from ri2fl.train.recipe import RECIPES_DIR, available_recipes, load_recipe, plan, run_recipe
from ri2fl.train.schema import AugmentOptions, DataOptions, TrainOptions, UNetOptions

SHIPPED = ("default", "default-broad", "segment-default", "segment-broad", "cell-default")


def test_every_shipped_model_has_a_recipe_whose_chain_resolves(tmp_path):
    assert set(available_recipes()) == set(available()) == set(SHIPPED)
    for name in SHIPPED:
        recipe = load_recipe(name)  # every stage's configuration parses and validates
        steps = plan(recipe, tmp_path)
        made = set()
        for step in steps:
            if step.init is None:
                assert step.stage.init_from is None
            else:  # the starting checkpoint is made by an earlier stage
                assert step.init.parent.name in made
                assert step.init.name == ("best.pt" if step.stage.init_weights == "best"
                                          else "last_epoch.pt")
            assert step.config["out"] == str(tmp_path / step.stage.name)
            assert step.config["finetune"] == (str(step.init) if step.init else None)
            assert Path(step.config["data"]["path"]).is_relative_to(tmp_path / "data")
            assert step.stage.data_set in recipe.data
            made.add(step.stage.name)
        assert recipe.ship.stage == steps[-1].stage.name  # the chain ends at what ships


def test_gpu_stages_stay_in_the_chain():
    gpu = {name: [s.name for s in load_recipe(name).stages if s.gpu] for name in SHIPPED}
    assert gpu == {"default": ["06_gpu", "10_refine_gpu"],
                   "default-broad": ["06_gpu", "10_refine_gpu"], "segment-default": ["05_gpu"],
                   "segment-broad": ["05_gpu"], "cell-default": []}


@pytest.mark.parametrize("name,base,added,first_init", [
    ("default-broad", "default",
     ["16_whole_distribution", "17_tomograph_weighted", "18_anneal"], ("15_end_to_end", "last")),
    ("segment-broad", "segment-default",
     ["06_whole_distribution", "07_tomograph_weighted", "08_mitosis", "09_more_cells"],
     ("05_gpu", "best")),
])
def test_a_broad_recipe_continues_its_base_chain(name, base, added, first_init):
    broad, default = load_recipe(name), load_recipe(base)
    names = [s.name for s in broad.stages]
    assert names == [s.name for s in default.stages] + added
    first = broad.stage(added[0])
    assert (first.init_from, first.init_weights) == first_init
    assert set(default.data) <= set(broad.data) and first.data_set == "sim_broad"
    # the weighted manifests its stages read are written by their data sets
    for stage in broad.stages[len(default.stages):]:
        manifest = stage.config["data"]["path"].split("/", 1)[1]
        assert manifest in broad.data[stage.data_set].manifests, stage.name
    assert broad.model == name and broad.ship.stage == added[-1]


def test_a_data_set_that_extends_another_adds_its_groups_and_links_its_files(tmp_path):
    from ri2fl.train.recipe import _link_files

    data = load_recipe("segment-broad").data
    broad, mitosis = data["sim_broad"].field_specs(), data["sim_broad_mitosis"].field_specs()
    assert mitosis[:len(broad)] == broad
    added = mitosis[len(broad):]
    assert len(added) == 16 and {f.variant for f in added} == {"mitotic"}
    source, folder = tmp_path / "sim_broad", tmp_path / "sim_broad_mitosis"
    source.mkdir()
    (source / broad[0].file).write_bytes(b"field")
    _link_files(source, folder, mitosis)
    assert [p.name for p in folder.iterdir()] == [broad[0].file]  # only what exists
    assert (folder / broad[0].file).stat().st_ino == (source / broad[0].file).stat().st_ino


def test_a_data_set_cannot_extend_a_missing_one(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    text = (RECIPES_DIR / "segment-default" / "recipe.yaml").read_text()
    (folder / "recipe.yaml").write_text(text.replace("extends: sim_broad", "extends: nothing"))
    for stage in (RECIPES_DIR / "segment-default").glob("0*.yaml"):
        shutil.copy(stage, folder / stage.name)
    with pytest.raises(ConfigError, match="extends 'nothing'"):
        load_recipe(folder)


def _same(stage_value, shipped_value):
    if isinstance(stage_value, float) or isinstance(shipped_value, float):
        return float(stage_value) == pytest.approx(float(shipped_value))
    return stage_value == shipped_value


@pytest.mark.parametrize("name", ["default", "default-broad", "segment-default",
                                  "segment-broad"])
def test_the_last_stage_is_the_recipe_the_shipped_weights_record(name):
    recipe = load_recipe(name)
    cfg = recipe.stage(recipe.ship.stage).config
    shipped = read_checkpoint(name)["config"]
    assert shipped["arch"] == cfg["arch"] and shipped["task"] == cfg["task"]
    assert shipped["voxel_size_um"] == cfg["voxel_size_um"]
    assert shipped["tile_size"] == (recipe.ship.tile_size or cfg["tile_size"])
    for key, value in cfg["model"].items():
        default = 1 if key == "in_channels" else None  # one RI channel, stored or not
        assert _same(value, shipped["model"].get(key, default)), key
    training = shipped["training"]
    for key in ("loss", "loss_options", "scheduler", "augment", "rescale", "batch_size",
                "steps_per_epoch", "seed", "bf16"):
        assert training[key] == cfg[key], key
    assert training["optimizer"]["lr"] == pytest.approx(float(cfg["optimizer"]["lr"]))
    for key in ("foreground_p", "empty_p", "sampling", "threshold", "cache_dtype"):
        assert training["data"].get(key, "voxels") == cfg["data"][key], key


def test_the_cell_recipe_is_the_shipped_cell_network():
    recipe = load_recipe("cell-default")
    cfg = recipe.stage(recipe.ship.stage).config
    shipped = read_checkpoint("cell-default")["config"]
    assert cfg["task"] == shipped["task"] == "cell_seg"
    assert cfg["voxel_size_um"] == shipped["voxel_size_um"]
    for key, value in shipped["model"].items():
        if key != "out_channels":
            assert cfg["model"][key] == value, key
    assert float(cfg["optimizer"]["lr"]) == shipped["training"]["lr"]
    assert cfg["scheduler"]["patience"] == shipped["training"]["patience"]
    assert recipe.ship.half is False  # shipped in float32


def test_schema_declares_every_default():
    assert set(TrainOptions.model_fields) == set(DEFAULTS)
    assert set(DataOptions.model_fields) == set(DEFAULTS["data"])
    assert set(AugmentOptions.model_fields) == set(DEFAULTS["augment"])
    assert set(DEFAULTS["model"]) <= set(UNetOptions.model_fields)


def _copy_recipe(tmp_path: Path, name: str = "cell-default") -> Path:
    folder = tmp_path / name
    shutil.copytree(RECIPES_DIR / name, folder)
    return folder


@pytest.mark.parametrize("text, key", [("epohcs: 3\n", "'epohcs'"),
                                       ("epochs: ten\n", "'epochs'"),
                                       ("data: {sampels: 3}\n", "'data.sampels'"),
                                       ("model: {in_channel: 4}\n", "'model.in_channel'"),
                                       ("augment: {flip: maybe}\n", "'augment.flip'")])
def test_unknown_key_or_wrong_type_is_one_line_naming_key_and_file(tmp_path, text, key):
    folder = _copy_recipe(tmp_path)
    stage = folder / "01_cells.yaml"
    options = yaml.safe_load(stage.read_text())
    options.update(yaml.safe_load(text))
    if "data" in yaml.safe_load(text):
        options["data"] = {**yaml.safe_load(stage.read_text())["data"], **options["data"]}
    if "model" in yaml.safe_load(text):
        options["model"] = {**yaml.safe_load(stage.read_text())["model"], **options["model"]}
    stage.write_text(yaml.safe_dump(options))
    with pytest.raises(ConfigError) as exc:
        load_recipe(folder)
    message = str(exc.value)
    assert key in message and str(stage) in message and "\n" not in message


def test_recipe_file_errors_name_the_recipe(tmp_path):
    folder = _copy_recipe(tmp_path)
    recipe = folder / "recipe.yaml"
    spec = yaml.safe_load(recipe.read_text())
    recipe.write_text(yaml.safe_dump({**spec, "shipp": {}}))
    with pytest.raises(ConfigError, match=r"recipe\.yaml: unknown option 'shipp'"):
        load_recipe(folder)
    spec["stages"][0]["init_from"] = "00_missing"
    recipe.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="not an earlier stage"):
        load_recipe(folder)
    spec["stages"][0].pop("init_from")
    (folder / "02_orphan.yaml").write_text("epochs: 1\n")
    recipe.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="not in the chain"):
        load_recipe(folder)


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("batch_size: two\n")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "option 'batch_size'" in err and str(cfg) in err and "\n" not in err
    assert main(["train", "--recipe", "default", "--out", str(tmp_path), "--epochs", "2"]) == 2
    assert "--recipe sets epochs itself" in capsys.readouterr().err


def test_models_lists_the_shipped_models_with_card_recipe_and_checksum(capsys):
    assert main(["models", "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert set(infos) == set(SHIPPED)
    for name, info in infos.items():
        weights = WEIGHTS_DIR / f"{name}.pt"
        sidecar = (WEIGHTS_DIR / f"{name}.pt.sha256").read_text().split()[0]
        assert info["sha256"] == sidecar == sha256_file(weights) and info["sha256_ok"]
        assert info["recipe"] == f"configs/recipes/{name}/recipe.yaml"
        assert info["card"] in (None, f"docs/models/{name}.md")
        assert info["training_data"] and info["voxel_size_um"]
    assert infos["default"]["gpu_stages"] == ["06_gpu", "10_refine_gpu"]
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "configs/recipes/cell-default/recipe.yaml" in text and "verified" in text


# ---- the cell task through `ri2fl train` ------------------------------------------------
VS = (0.2, 0.15, 0.15)


def _ellipsoid(shape, centre, radii):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g * v - c) / r) ** 2 for g, v, c, r in zip(grids, VS, centre, radii)) <= 1


def _two_cells(seed: int, shape=(16, 96, 96)) -> PairedSample:
    """Two touching cells, each with a nucleus of lower RI than its cytoplasm."""
    rng = np.random.default_rng(seed)
    cy = 7.2 + rng.uniform(-0.5, 0.5)
    labels = np.zeros(shape, np.int32)
    nuclei = np.zeros(shape, np.int32)
    for i, centre in enumerate([(1.6, cy, 4.0), (1.6, cy, 10.4)], start=1):
        labels[_ellipsoid(shape, centre, (1.5, 5.0, 3.6)) & (labels == 0)] = i
        nuclei[_ellipsoid(shape, centre, (0.9, 1.6, 1.4))] = i
    ri = np.full(shape, 1.337, np.float32)
    ri[labels > 0], ri[nuclei > 0] = 1.36, 1.355
    ri += rng.normal(0, 5e-4, shape).astype(np.float32)
    return PairedSample(ri=ri, fl={}, voxel_size_um=VS, cell_labels=labels,
                        nucleus_labels=nuclei,
                        masks={"nucleus": nuclei > 0, "membrane": labels > 0})


def test_cell_network_trains_through_ri2fl_train(tmp_path, capsys):
    rows = []
    for i, split in enumerate(["train", "cells", "val"]):
        write_paired(tmp_path / f"f{i}.h5", _two_cells(i))
        rows.append({"path": f"f{i}.h5", "cell_type": "fibroblast", "seed": i, "split": split})
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stage = yaml.safe_load((RECIPES_DIR / "cell-default" / "01_cells.yaml").read_text())
    stage.update(epochs=1, max_minutes=None, tensorboard=False, out=str(tmp_path / "run"),
                 model={**stage["model"], "features": 4, "depth": 2})
    cfg = tmp_path / "cells.yaml"
    cfg.write_text(yaml.safe_dump(stage))
    assert main(["train", str(cfg), "--data", str(tmp_path / "manifest.csv")]) == 0
    model = load(tmp_path / "run")
    assert model.task == "cell_seg" and model.targets == ["cell"]
    assert model.config["inputs"] == ["ri", "membrane", "this_nucleus", "other_nuclei"]
    assert model.config["training"]["data"]["summary"]["train"] == {"files": 2, "nuclei": 4}
    x = np.zeros((1, 4, 8, 24, 24), np.float32)
    import torch

    assert model(torch.from_numpy(x)).shape == (1, 1, 8, 24, 24)


def test_cell_task_refuses_what_it_cannot_train():
    base = {"task": "cell_seg", "targets": ["cell"], "batch_size": 1, "loss": "dice_bce"}
    assert load_config(base)["model"]["in_channels"] == 4
    for bad, match in (({"targets": ["nucleus"]}, "targets"), ({"batch_size": 2}, "batch_size"),
                       ({"model": {"in_channels": 1}}, "in_channels")):
        with pytest.raises(ConfigError, match=match):
            load_config({**base, **bad})


# ---- a tiny recipe run: data, two stages, resume, ship ---------------------------------
def test_a_tiny_recipe_runs_resumes_and_ships(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    stage = {"targets": ["membrane", "nucleus"], "data": {"path": "sim/manifest.csv"},
             "model": {"features": 4, "depth": 2, "dropout": 0.0, "z_pool_levels": 1},
             "patch_size": [8, 16, 16], "batch_size": 2, "epochs": 1, "steps_per_epoch": 2,
             "val_patches": 2, "num_threads": 1, "tensorboard": False,
             "augment": {"elastic": 0.0}}
    (folder / "a.yaml").write_text(yaml.safe_dump(stage))
    (folder / "b.yaml").write_text(yaml.safe_dump({**stage, "optimizer": {"lr": 1e-4}}))
    (folder / "recipe.yaml").write_text(yaml.safe_dump({
        "model": "tiny",
        "data": {"sim": {"fields": {"train": 2, "val": 1, "shape": [16, 48, 48]}}},
        "stages": [{"name": "a"}, {"name": "b", "init_from": "a", "init_weights": "last"}],
        "ship": {"stage": "b", "weights": "last", "tile_size": [8, 32, 32]}}))
    out = tmp_path / "out"
    shipped = run_recipe(folder, out)
    assert shipped == out / "tiny.pt"
    assert (out / "tiny.pt.sha256").read_text().split()[0] == sha256_file(shipped)
    assert load(shipped).tile_size == (8, 32, 32)
    assert (out / "a" / "last_epoch.pt").is_file()  # stage b started from a's last epoch
    assert load(out / "b").config["training"]["optimizer"]["lr"] == 1e-4
    before = (out / "b" / "best.pt").stat().st_mtime_ns
    assert run_recipe(folder, out) == shipped  # finished stages are not trained again
    assert (out / "b" / "best.pt").stat().st_mtime_ns == before


def test_default_forests_are_built_from_simulated_fields(tmp_path):
    from ri2fl.segment.lipid2d import LipidClassifier
    from ri2fl.segment.watershed import VoxelClassifier
    from ri2fl.train.classifiers import build_default_classifiers

    sample = _two_cells(0)
    inside = (sample.cell_labels > 0).astype(np.float32)
    droplets = np.zeros_like(inside, dtype=bool)
    droplets[6:9, 40:44, 20:24] = True
    sample.fl = {"nucleus": (sample.nucleus_labels > 0).astype(np.float32),
                 "membrane": inside, "lipid_droplets": droplets.astype(np.float32)}
    sample.masks["lipid_droplets"] = droplets
    write_paired(tmp_path / "f.h5", sample)
    (tmp_path / "manifest.csv").write_text("path,cell_type,seed,split\nf.h5,blob,0,train\n")
    written = build_default_classifiers(tmp_path / "manifest.csv", tmp_path / "forests",
                                        n_files=1, per_class=50, fl_model=None)
    assert [p.name for p in written] == ["voxel_fl.npz", "voxel_ri.npz", "lipid2d.npz"]
    assert VoxelClassifier.load(written[0]).channels == ("nucleus", "membrane")
    assert VoxelClassifier.load(written[1]).channels == ("ri",)
    LipidClassifier.load(written[2])


def test_tensorboard_without_the_extra_is_one_clear_error(monkeypatch):
    import importlib.util

    from ri2fl.errors import ConfigError
    from ri2fl.train.config import load_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert load_config({})["tensorboard"] is False  # the default needs nothing extra
    with pytest.raises(ConfigError, match=r"ri2fl\[tensorboard\]"):
        load_config({"tensorboard": True})


def test_the_whole_distribution_set_mixes_every_kind_and_random_instruments():
    from collections import Counter

    from ri2fl.simulate import SIMULATED_KINDS

    fields = load_recipe("default").data["sim_broad"].field_specs()
    assert {f.cell_type for f in fields} == set(SIMULATED_KINDS)
    random = [f for f in fields if f.options.get("domain") == "random"]
    assert len(random) == 100 and len(fields) == 127
    # every kind has validation fields by both kinds of instrument
    val = Counter((f.cell_type, f.options.get("domain")) for f in fields if f.split == "val")
    assert all(val[(k, "random")] == 2 and val[(k, None)] == 1 for k in SIMULATED_KINDS)
    assert len({f.name for f in fields}) == len(fields)


def test_a_data_set_may_extend_a_base_recipes_data_set_that_extends_another(tmp_path):
    shutil.copytree(RECIPES_DIR / "segment-default", tmp_path / "segment-default")
    folder = tmp_path / "broad"
    folder.mkdir()
    head = ("model: broad\nextends: segment-default\nstages: []\nship: {stage: 05_gpu}\n"
            "data:\n  more:\n    extends: sim_broad_mitosis\n    groups:\n"
            "      - {split: train, first_seed: 7100, n: 1, shape: [16, 32, 32], "
            "cell_types: [hek293]}\n")
    (folder / "recipe.yaml").write_text(head)
    recipe = load_recipe(folder)
    mitosis, more = (recipe.data[n].field_specs() for n in ("sim_broad_mitosis", "more"))
    assert more[:len(mitosis)] == mitosis and len(more) == len(mitosis) + 1
    assert (more[-1].cell_type, more[-1].seed) == ("hek293", 7100)
    # a recipe's own data sets chain in order: one may extend another written above it
    (folder / "recipe.yaml").write_text(head + "  again:\n    extends: more\n    groups:\n"
                                        "      - {split: val, first_seed: 7200, n: 1, shape: "
                                        "[16, 32, 32], cell_types: [hek293]}\n")
    again = load_recipe(folder).data["again"].field_specs()
    assert again[:len(more)] == more and (again[-1].split, again[-1].seed) == ("val", 7200)
    # ... not one written below it (nor itself)
    text = head.replace("extends: sim_broad_mitosis", "extends: later")
    (folder / "recipe.yaml").write_text(text + "  later:\n    extends: sim_broad\n")
    with pytest.raises(ConfigError, match="extends 'later'"):
        load_recipe(folder)
