"""scripts/ship_model.py: how a trained run becomes a shipped model."""

from __future__ import annotations

from pathlib import Path

import torch

from ri2fl.models import build, checkpoint, load, save_checkpoint


def _run_folder(root: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A training folder: best.pt, and last.pt holding other (later) weights."""
    cfg = {"model": {"features": 4, "depth": 2}, "patch_size": [16, 32, 32]}
    best = save_checkpoint(root / "best.pt", build(cfg), cfg, extra={"epoch": 3})
    torch.manual_seed(1)
    later = build(cfg).state_dict()
    torch.save({"model": later, "epoch": 9}, root / "last.pt")
    return best, later


def test_last_ships_the_last_epochs_weights_and_default_the_best(load_script, tmp_path,
                                                                  monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", weights)
    script = load_script("ship_model")
    monkeypatch.setattr(script, "WEIGHTS_DIR", weights)
    best, later = _run_folder(tmp_path)

    script.main([str(best), "tiny-last", "--last"])
    shipped = load(weights / "tiny-last.pt").state_dict()
    for key, value in later.items():  # float16 on disk: equal to its precision
        torch.testing.assert_close(shipped[key], value, atol=2e-3, rtol=1e-3)

    script.main([str(best), "tiny-best"])
    from_best = load(weights / "tiny-best.pt").state_dict()
    key = next(k for k, v in later.items() if v.is_floating_point() and v.numel() > 1)
    torch.testing.assert_close(from_best[key], load(best).state_dict()[key], atol=2e-3,
                               rtol=1e-3)
    assert not torch.allclose(from_best[key], later[key], atol=1e-2)
    assert checkpoint.read_checkpoint(weights / "tiny-last.pt")["extra"]["epoch"] == 9


def test_out_writes_the_last_epoch_as_a_checkpoint_outside_the_package(load_script, tmp_path,
                                                                        monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    script = load_script("ship_model")
    monkeypatch.setattr(script, "WEIGHTS_DIR", weights)
    best, later = _run_folder(tmp_path)

    out = tmp_path / "judged" / "run_last.pt"
    script.main([str(best), "--last", "--fp32", "--out", str(out)])
    written = load(out).state_dict()
    for key, value in later.items():  # float32 kept: the same numbers
        torch.testing.assert_close(written[key], value)
    assert not list(weights.iterdir())  # nothing shipped
