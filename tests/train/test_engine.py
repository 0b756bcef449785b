"""The training engine: learning, plateau schedule, resume, fine-tuning, logs, CLI, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from ri2fl.cli.main import main
from ri2fl.data import target_variances
from ri2fl.errors import ConfigError
from ri2fl.models import load
from ri2fl.train import Trainer, engine, load_config, train, validate

from .conftest import tiny_config


def _rows(out):
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def test_tiny_training_reduces_validation_loss(paired_folder, tmp_path):
    cfg = load_config(tiny_config(paired_folder, tmp_path / "run", epochs=4, steps_per_epoch=5,
                                  optimizer={"lr": 3e-3}))
    trainer = Trainer(cfg)
    before, _ = validate(trainer.model, trainer.val_loader, trainer.loss_fn, "pcc",
                         trainer.device)
    best = trainer.fit()
    model = load(best)
    after, per_target = validate(model, trainer.val_loader, trainer.loss_fn, "pcc",
                                 trainer.device)
    assert after < 0.8 * before
    assert model.targets == ["membrane", "nucleus"] and len(per_target) == 2
    rows = _rows(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"val_pcc", "pcc_nucleus", "lr", "patches_per_s"} <= set(rows[0])
    assert model.config["training"]["loss"] == "mse_gdl"


def test_auto_channel_weights_come_from_the_training_targets(paired_folder, tmp_path):
    cfg = load_config(tiny_config(paired_folder, tmp_path / "run", epochs=1,
                                  loss_options={"channel_weights": "auto"}))
    trainer = Trainer(cfg)
    variances = target_variances(trainer.train_set.volumes)
    weights = trainer.cfg["loss_options"]["channel_weights"]
    assert len(weights) == 2 and sum(weights) / 2 == pytest.approx(1.0)
    # the sparser target (the thin membrane rim) gets the larger weight, in inverse proportion
    assert weights[0] / weights[1] == pytest.approx(variances[1] / variances[0], rel=1e-4)
    model = load(trainer.fit())
    assert model.config["training"]["loss_options"]["channel_weights"] == weights


def test_empty_medium_patches_train_and_refuse_non_ri_input(paired_folder, tmp_path):
    cfg = tiny_config(paired_folder, tmp_path / "run", epochs=1)
    cfg["data"]["empty_p"] = 0.3
    cfg = load_config(cfg)
    trainer = Trainer(cfg)
    assert trainer.train_set.empty_p == 0.3
    assert trainer.train_set.empty_source.voxel_size_um == tuple(cfg["voxel_size_um"])
    assert trainer.val_set.empty_p == 0.0  # validation PCC needs signal in every patch
    assert load(trainer.fit()).config["training"]["data"]["empty_p"] == 0.3
    for bad, match in (({"empty_p": 1.0}, "empty_p"), ({"empty_p": 0.2}, "RI input")):
        kind = {"input_kind": "bf"} if match == "RI input" else {}
        cfg = tiny_config(paired_folder, tmp_path / "bad", epochs=1, **kind)
        cfg["data"].update(bad)
        with pytest.raises(ConfigError, match=match):
            load_config(cfg)


def test_inference_tile_is_stored_and_checked(paired_folder, tmp_path):
    cfg = load_config(tiny_config(paired_folder, tmp_path / "run", epochs=1,
                                  tile_size=[8, 32, 32]))
    assert load(Trainer(cfg).fit()).tile_size == (8, 32, 32)
    with pytest.raises(ConfigError, match="tile_size"):
        load_config(tiny_config(paired_folder, tmp_path / "bad", epochs=1, tile_size=[8, 0]))


def test_manifest_weights_reach_the_training_draws_only(paired_folder, tmp_path):
    with open(paired_folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    weighted = paired_folder / "manifest_weighted.csv"  # paths are relative to its folder
    with open(weighted, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "weight"])
        writer.writeheader()
        writer.writerows({**r, "weight": 3 - i} for i, r in enumerate(rows))
    trainer = Trainer(load_config(tiny_config(weighted, tmp_path / "run", epochs=1)))
    assert [v.weight for v in trainer.train_set.volumes] == [3.0, 2.0, 1.0]
    assert [v.weight for v in trainer.val_set.volumes] == [1.0]  # validation as the data are
    trainer.fit()


def test_files_read_in_worker_processes_equal_the_serial_read(paired_folder, tmp_path):
    def volumes(workers):
        cfg = tiny_config(paired_folder, tmp_path / f"run{workers}", epochs=1)
        cfg["data"]["load_workers"] = workers
        return Trainer(load_config(cfg)).train_set.volumes

    serial, parallel = volumes(1), volumes(2)
    assert [v.cell_type for v in parallel] == [v.cell_type for v in serial]
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a.input, b.input) and np.array_equal(a.target, b.target)
    assert engine._load_workers(None, 4) == 0  # a few files: no processes to start
    assert engine._load_workers(1, 200) == 0 and engine._load_workers(16, 3) == 3


def test_cli_empty_p_sets_the_data_option_and_refuses_bad_values(paired_folder, tmp_path,
                                                                 capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(paired_folder, tmp_path / "out", epochs=1)))
    assert main(["train", str(cfg_path), "--empty-p", "0.25"]) == 0
    data = load(tmp_path / "out").config["training"]["data"]
    assert data["empty_p"] == 0.25 and data["path"] == str(paired_folder)
    capsys.readouterr()
    assert main(["train", str(cfg_path), "--empty-p", "1.5"]) == 2
    assert "data.empty_p must be in [0, 1)" in capsys.readouterr().err


def test_scheduler_steps_on_a_validation_plateau(paired_folder, tmp_path, monkeypatch):
    # validation PCC: flat for three epochs, then better
    scores = iter([0.5, 0.5, 0.5, 0.6])
    monkeypatch.setattr(engine, "validate", lambda *a, **k: (0.1, [next(scores)] * 2))
    train(tiny_config(paired_folder, tmp_path, epochs=4, steps_per_epoch=1,
                      scheduler={"patience": 0, "factor": 0.2}))
    rows = _rows(tmp_path)
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx([1e-3, 2e-4, 4e-5, 4e-5])
    # the best checkpoint is the epoch that improved
    assert load(tmp_path / "best.pt").config["targets"] == ["membrane", "nucleus"]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["best_epoch"] == 4


def test_resume_continues_at_the_right_epoch_with_identical_state(paired_folder, tmp_path):
    extra = {"model": {"features": 4, "depth": 2, "dropout": 0.2, "z_pool_levels": 1}}
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train(tiny_config(paired_folder, straight, epochs=2, **extra))
    train(tiny_config(paired_folder, broken, epochs=1, **extra))
    train(tiny_config(paired_folder, broken, epochs=2, **extra), resume=True)
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(broken / "last.pt", weights_only=True)
    assert b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [r["train_loss"] for r in _rows(straight)] == [r["train_loss"] for r in _rows(broken)]


def test_finetune_keeps_trunk_and_replaces_head(paired_folder, tmp_path):
    first = train(tiny_config(paired_folder, tmp_path / "a", epochs=1))
    cfg = tiny_config(paired_folder, tmp_path / "b", epochs=1, targets=["nucleus"],
                      finetune=str(first))
    cfg["model"] = {"features": 99}  # ignored: the checkpoint's architecture wins
    trainer = Trainer(load_config(cfg))
    source = load(first)
    assert torch.equal(trainer.model.encoders[0][0].weight, source.encoders[0][0].weight)
    assert trainer.model.head.out_channels == 1


def test_segmentation_task_with_masks_and_dice(paired_folder, tmp_path):
    cfg = tiny_config(paired_folder, tmp_path, epochs=1, task="organelle_seg", loss="dice_bce",
                      targets=["masks/nucleus"])
    cfg["model"]["final_activation"] = "sigmoid"
    model = load(train(cfg))
    assert model.targets == ["nucleus"] and model.task == "organelle_seg"
    assert "val_dice" in _rows(tmp_path)[0]


def test_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--targets", "--resume", "--finetune", "--bf16", "Examples"):
        assert option in text


def test_cli_trains_with_bf16_and_reports_config_errors(paired_folder, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg = tiny_config(paired_folder, tmp_path / "out")
    del cfg["data"]
    cfg_path.write_text(yaml.safe_dump(cfg))
    code = main(["train", str(cfg_path), "--data", str(paired_folder), "--epochs", "1",
                 "--bf16", "--out", str(tmp_path / "out")])
    assert code == 0
    assert capsys.readouterr().out.strip().endswith("best.pt")
    assert load(tmp_path / "out").config["training"]["bf16"] is True
    cfg_path.write_text("epohcs: 3\n")
    assert main(["train", str(cfg_path)]) == 2
    assert "unknown option 'epohcs'" in capsys.readouterr().err


def test_cli_channel_weights_keep_the_other_loss_options(paired_folder, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(paired_folder, tmp_path / "out", epochs=1,
                                                   loss_options={"gdl_weight": 0.5})))
    assert main(["train", str(cfg_path), "--channel-weights", "3", "1"]) == 0
    options = load(tmp_path / "out").config["training"]["loss_options"]
    assert options == {"gdl_weight": 0.5, "channel_weights": [3.0, 1.0]}
    capsys.readouterr()
    assert main(["train", str(cfg_path), "--channel-weights", "heavy"]) == 2
    assert "--channel-weights takes 'auto' or numbers" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes(paired_folder, tmp_path):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(paired_folder, tmp_path / "ddp", epochs=1)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RI2FL_NO_PROGRESS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--standalone", "-m", "ri2fl.cli.main", "train", str(cfg_path)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _rows(tmp_path / "ddp")
    assert len(rows) == 1  # only rank 0 logs
    assert load(tmp_path / "ddp").targets == ["membrane", "nucleus"]


def test_refined_network_trains_a_head_on_a_frozen_checkpoint(paired_folder, tmp_path):
    coarse = tiny_config(paired_folder, tmp_path / "coarse", epochs=1,
                         voxel_size_um=[0.4, 0.3, 0.3])
    first = train(coarse)
    cfg = tiny_config(paired_folder, tmp_path / "refined", epochs=2, finetune=str(first),
                      arch="refined_unet3d", patch_size=[8, 16, 16],
                      voxel_size_um=[0.2, 0.15, 0.15],
                      optimizer={"lr": 1e-2})
    cfg["model"] = {"refine_channels": [1], "features": 4, "layers": 2}
    refined = load(train(cfg))
    source = load(first)
    for key, value in source.state_dict().items():
        assert torch.equal(refined.base.state_dict()[key], value), key
    assert refined.head[-1].weight.abs().sum() > 0  # the zero-initialised head has learnt
    assert tuple(refined.voxel_size_um) == (0.2, 0.15, 0.15)


def test_finetuning_a_refined_network_can_unfreeze_its_base(paired_folder, tmp_path):
    coarse = train(tiny_config(paired_folder, tmp_path / "coarse", epochs=1,
                               voxel_size_um=[0.4, 0.3, 0.3]))
    cfg = tiny_config(paired_folder, tmp_path / "refined", epochs=1, finetune=str(coarse),
                      arch="refined_unet3d", patch_size=[8, 16, 16],
                      voxel_size_um=[0.2, 0.15, 0.15])
    cfg["model"] = {"refine_channels": [1], "features": 4, "layers": 2}
    refined = train(cfg)
    base = load(refined).base.state_dict()
    for freeze, changed in ((True, False), (False, True)):
        again = tiny_config(paired_folder, tmp_path / f"again_{freeze}", epochs=1,
                            finetune=str(refined), arch="refined_unet3d",
                            patch_size=[8, 16, 16], voxel_size_um=[0.2, 0.15, 0.15],
                            optimizer={"lr": 1e-2})
        again["model"] = {"freeze_base": freeze}
        tuned = load(train(again)).base.state_dict()
        moved = any(not torch.equal(tuned[k], v) for k, v in base.items()
                    if v.is_floating_point())
        assert moved == changed, freeze


def test_refined_network_refuses_a_checkpoint_on_another_grid(paired_folder, tmp_path):
    first = train(tiny_config(paired_folder, tmp_path / "coarse", epochs=1))  # canonical grid
    cfg = tiny_config(paired_folder, tmp_path / "refined", finetune=str(first),
                      arch="refined_unet3d", voxel_size_um=[0.2, 0.15, 0.15])
    cfg["model"] = {"refine_channels": [1]}
    with pytest.raises(ConfigError, match=r"model\.scale"):
        Trainer(load_config(cfg))


def test_finetune_keeps_the_checkpoints_input_channels(paired_folder, tmp_path):
    from ri2fl.models import UNet3D, save_checkpoint

    net = UNet3D(in_channels=2, out_channels=2, features=4, depth=2, z_pool_levels=1)
    source = save_checkpoint(tmp_path / "two_inputs.pt", net, {
        "model": {"in_channels": 2, "features": 4, "depth": 2, "z_pool_levels": 1},
        "targets": ["membrane", "nucleus"]})
    cfg = tiny_config(paired_folder, tmp_path / "b", finetune=str(source))
    trainer = Trainer(load_config(cfg))
    assert trainer.model.encoders[0][0].in_channels == 2
