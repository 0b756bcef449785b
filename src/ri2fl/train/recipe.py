"""Recipes: the chain of training stages that rebuilds a shipped model, run by one command.

A recipe is a folder ``configs/recipes/<model>/`` holding ``recipe.yaml`` and one training
configuration per stage (``<stage>.yaml``, the options of :data:`ri2fl.train.config.DEFAULTS`;
its ``data.path`` is relative to ``<out>/data``, its ``finetune`` and ``out`` the recipe's)::

    model: default                     # the shipped name the chain ends at
    data:                              # simulated under <out>/data/<name>/
      sim_fibroblast:
        fields: {train: 60, val: 4, mitotic_train: 12, shape: [64, 256, 256]}
        manifests: {manifest.csv: {}, manifest_mitosis.csv: {mitotic_weight: 4}}
    stages:                            # in order
      - {name: 01_coarse}              # from scratch
      - {name: 02_channel_weights, init_from: 01_coarse}   # its best checkpoint
      - {name: 03_longer, init_from: 02_channel_weights, init_weights: last}
    ship: {stage: 03_longer, weights: last, tile_size: [32, 128, 128]}

A recipe may continue another (``extends: default``, a recipe folder beside it): its data
sets and stages come first, and its own stages may start from theirs.

``run_recipe(recipe, out)`` simulates the data sets, trains every stage into ``<out>/<stage>``
(a stage whose ``done.json`` exists is skipped, an interrupted one resumes from its
``last.pt``) and writes ``<out>/<model>.pt`` with its ``.sha256`` sidecar, in the format of
the package's shipped weights. A stage whose configuration asks for ``device: cuda`` is a GPU
stage: it stops the chain on a machine without one (``device`` overrides it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from ..errors import ConfigError
from .config import load_config, read_yaml
from .schema import _Section, raise_config_error

__all__ = ["RECIPES_DIR", "Recipe", "Stage", "available_recipes", "find_recipe",
           "load_recipe", "plan", "run_recipe", "simulate_data_set"]

log = logging.getLogger(__name__)

#: The recipes of the shipped models, in the source tree.
RECIPES_DIR = Path(__file__).resolve().parents[3] / "configs" / "recipes"
DONE = "done.json"


class FieldGroup(_Section):
    """Fields of one split from consecutive seeds, with :func:`simulate_fov`'s options."""

    split: str
    first_seed: int
    n: int
    cell_types: tuple[str, ...] = ("fibroblast",)
    shape: tuple[int, int, int] = (64, 256, 256)
    variant: str | None = None
    n_cells: int | None = None
    cluster: bool | None = None
    droplets_per_cell: tuple[int, int] | None = None
    # "random": each field imaged by an instrument drawn from ri2fl.simulate.domain
    domain: Literal["default", "random"] | None = None


class Fields(_Section):
    """The options of ``scripts/make_sim_data.py`` (:func:`ri2fl.simulate.sets.plan_fields`)."""

    cell_types: tuple[str, ...] = ("fibroblast",)
    train: int = 0
    val: int = 0
    test: int = 0
    mitotic_train: int = 0
    mitotic_val: int = 0
    sparse_train: int = 0
    sparse_val: int = 0
    lipid_train: int = 0
    lipid_val: int = 0
    lipid_droplets: tuple[int, int] = (20, 60)
    shape: tuple[int, int, int] = (64, 256, 256)
    # "random": each field imaged by an instrument drawn from ri2fl.simulate.domain
    domain: Literal["default", "random"] | None = None
    seed: int = 0
    modalities: tuple[str, ...] = ()


class Manifest(_Section):
    mitotic_weight: float | None = None
    # draws the fields of the default fast tomograph this many times as often as those of
    # randomly drawn instruments
    default_tomograph_weight: float | None = None


class DataSet(_Section):
    """A simulated data set: make_sim_data's fields, then explicit groups, and manifests.

    With ``extends: <data set>`` it holds that data set's fields and groups, then its own
    groups; files the other data set has already simulated are linked, not simulated again.
    """

    extends: str | None = None
    fields: Fields | None = None
    groups: tuple[FieldGroup, ...] = ()
    manifests: dict[str, Manifest] = Field(
        default_factory=lambda: {"manifest.csv": Manifest()})

    def field_specs(self) -> list:
        from ..simulate.sets import FieldSpec, plan_fields

        specs = plan_fields(**self.fields.model_dump()) if self.fields else []
        for g in self.groups:
            options = {"domain": "random"} if g.domain == "random" else {}
            specs += [FieldSpec(ct, g.split, g.first_seed + i, g.shape, g.variant, g.n_cells,
                                g.cluster, g.droplets_per_cell, options=options)
                      for ct in g.cell_types for i in range(g.n)]
        return specs

    def describe(self) -> str:
        """One line: how many fields of which kind, cell type and shape."""
        parts = []
        if self.fields:
            f = self.fields
            kinds = ", ".join(f"{k} {v}" for k, v in f.model_dump().items()
                              if isinstance(v, int) and v and k != "seed")
            parts.append(f"{'/'.join(f.cell_types)} {'x'.join(map(str, f.shape))}: {kinds}")
        for g in self.groups:
            extra = " clusters" if g.cluster else ""
            parts.append(f"{'/'.join(g.cell_types)} {'x'.join(map(str, g.shape))}: "
                         f"{g.split} {g.n}{extra} (seeds {g.first_seed}+)")
        return "; ".join(parts)


class Ship(_Section):
    stage: str
    weights: Literal["best", "last"] = "best"
    tile_size: list[int] | None = None
    half: bool = True


class StageLink(_Section):
    """A stage of the chain and the stage whose weights it starts from."""

    name: str
    init_from: str | None = None
    init_weights: Literal["best", "last"] = "best"


class Classifiers(_Section):
    """The default forests of the segmentation routes (:mod:`ri2fl.train.classifiers`)."""

    data: str
    n_files: int = 2
    per_class: int = 1500
    fl_model: str | None = "default"


class RecipeFile(_Section):
    model: str
    extends: str | None = None
    data: dict[str, DataSet] = Field(default_factory=dict)
    stages: list[StageLink]
    ship: Ship
    classifiers: Classifiers | None = None


@dataclass
class Stage:
    """One stage: its validated configuration and where its starting weights come from."""

    name: str
    path: Path
    config: dict[str, Any]
    init_from: str | None
    init_weights: str
    data_set: str | None

    @property
    def gpu(self) -> bool:
        return str(self.config["device"]).startswith("cuda")


@dataclass
class Recipe:
    """A parsed, checked recipe (:func:`load_recipe`)."""

    model: str
    path: Path
    data: dict[str, DataSet]
    stages: list[Stage]
    ship: Ship
    classifiers: Classifiers | None = None

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def available_recipes() -> list[str]:
    """Names of the recipes in :data:`RECIPES_DIR`."""
    return sorted(p.parent.name for p in RECIPES_DIR.glob("*/recipe.yaml"))


def find_recipe(name_or_path: str | Path) -> Path:
    """The ``recipe.yaml`` of a recipe name (``default``), folder or file."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "recipe.yaml"
    if path.is_file():
        return path
    for root in (Path.cwd() / "configs" / "recipes", RECIPES_DIR):
        if (root / str(name_or_path) / "recipe.yaml").is_file():
            return root / str(name_or_path) / "recipe.yaml"
    raise ConfigError(f"no recipe {str(name_or_path)!r}", "--recipe",
                      f"choose one of {available_recipes()} or give a recipe.yaml")


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml(path, "file", "a recipe file")


def _load_stage(path: Path, link: StageLink, data_sets: dict[str, DataSet]) -> Stage:
    raw = _read_yaml(path)
    if raw.get("finetune") or raw.get("out"):
        raise ConfigError("a recipe stage starts from init_from (recipe.yaml) and writes into "
                          "the recipe's output", path, "remove finetune and out")
    config = load_config(raw, where=path)  # every option checked, the file named in errors
    data_path = str((raw.get("data") or {}).get("path") or "")
    data_set = data_path.split("/", 1)[0] or None
    if data_set not in data_sets:
        raise ConfigError(f"data.path {data_path!r} names no data set of the recipe", path,
                          f"start it with one of {sorted(data_sets)}")
    return Stage(path.stem, path, config, link.init_from, link.init_weights, data_set)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Parse a recipe and every stage's configuration, and check the chain.

    Raises
    ------
    ConfigError
        An unknown key or wrong type in ``recipe.yaml`` or a stage file; a stage whose
        ``init_from`` is not an earlier stage; a ship stage not in the chain.
    """
    path = find_recipe(name_or_path)
    try:
        spec = RecipeFile.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise_config_error(exc, RecipeFile, path)
    base = load_recipe(path.parent.parent / spec.extends) if spec.extends else None
    data = {**(base.data if base else {}), **spec.data}
    data.update(_resolve_data_sets(spec.data, data, path))  # the base's are resolved already
    stages: list[Stage] = list(base.stages) if base else []
    for link in spec.stages:
        earlier = [s.name for s in stages]
        if link.init_from is not None and link.init_from not in earlier:
            raise ConfigError(f"stage {link.name}: init_from {link.init_from!r} is not an "
                              "earlier stage", path, f"earlier stages: {earlier}")
        stages.append(_load_stage(path.parent / f"{link.name}.yaml", link, data))
    names = [s.name for s in stages]
    if spec.ship.stage not in names:
        raise ConfigError(f"ship.stage {spec.ship.stage!r} is not a stage", path)
    unlisted = sorted(p.stem for p in path.parent.glob("*.yaml")
                      if p.name != "recipe.yaml" and p.stem not in names)
    if unlisted:
        raise ConfigError(f"stage files not in the chain: {unlisted}", path,
                          "list them under stages or delete them")
    if spec.classifiers and spec.classifiers.data.split("/", 1)[0] not in data:
        raise ConfigError(f"classifiers.data {spec.classifiers.data!r} names no data set", path)
    return Recipe(spec.model, path, data, stages, spec.ship, spec.classifiers)


@dataclass
class StagePlan:
    """A stage resolved under an output root: its configuration and starting checkpoint."""

    stage: Stage
    out: Path
    init: Path | None
    config: dict[str, Any]

    @property
    def done(self) -> bool:
        return (self.out / DONE).is_file()


def _init_path(root: Path, stage: Stage) -> Path | None:
    if stage.init_from is None:
        return None
    name = "best.pt" if stage.init_weights == "best" else "last_epoch.pt"
    return root / stage.init_from / name


def plan(recipe: Recipe, root: str | Path, **overrides: Any) -> list[StagePlan]:
    """Every stage's complete configuration under ``root``, without training.

    ``overrides`` (``device``, ``num_threads``) replace the stages' own values.
    """
    root = Path(root)
    plans = []
    for stage in recipe.stages:
        init = _init_path(root, stage)
        user = _read_yaml(stage.path)
        config = load_config(user, where=stage.path, out=str(root / stage.name),
                             data_path=str(root / "data" / user["data"]["path"]),
                             finetune=str(init) if init else None,
                             **{k: v for k, v in overrides.items() if v is not None})
        plans.append(StagePlan(stage, root / stage.name, init, config))
    return plans


def _resolve_data_sets(own: dict[str, DataSet], data: dict[str, DataSet],
                       path: Path) -> dict[str, DataSet]:
    """Give each of ``own`` that extends another data set that set's fields and groups first.

    The base recipe's data sets are resolved already; a recipe's own are resolved in order, so
    one may extend any data set of its base or one of its own written above it.
    """
    data, resolved = dict(data), {}
    for name, ds in own.items():
        if ds.extends is not None:
            base = data.get(ds.extends)
            if base is None or (ds.extends in own and ds.extends not in resolved):
                raise ConfigError(f"data set {name!r} extends {ds.extends!r}, which is not a "
                                  "data set of the recipe or its base written above it", path,
                                  f"name one of {sorted(data)}")
            ds = ds.model_copy(update={"fields": base.fields,
                                       "groups": (*base.groups, *ds.groups)})
        resolved[name] = data[name] = ds
    return resolved


def _link_files(source: Path, folder: Path, fields: Sequence) -> None:
    """Hard-link (or copy) the fields ``source`` already holds into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in fields:
        src, dest = source / f.file, folder / f.file
        if src.is_file() and not dest.exists():
            try:
                os.link(src, dest)
            except OSError:  # another file system
                shutil.copy2(src, dest)


def simulate_data_set(recipe: Recipe | str | Path, name: str, root: str | Path,
                      workers: int = 1) -> Path:
    """Simulate a recipe's data set into ``root/data/<name>/`` (files already there are
    kept) and write its manifests; return the folder.

    >>> simulate_data_set("default", "sim_broad", "rebuild/", workers=2)  # doctest: +SKIP
    """
    from ..simulate.sets import simulate_fields, write_manifest

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    data = recipe.data[name]
    folder = Path(root) / "data" / name
    fields = data.field_specs()
    if all((folder / m).is_file() for m in data.manifests) and \
            all((folder / f.name).is_file() for f in fields):
        return folder
    if data.extends is not None:
        _link_files(Path(root) / "data" / data.extends, folder, fields)
    log.info("simulating %s: %s", name, data.describe())
    simulate_fields(folder, fields, workers=workers)
    for manifest, options in data.manifests.items():
        write_manifest(folder, fields, manifest, options.mitotic_weight,
                       options.default_tomograph_weight)
    return folder


def export_checkpoint(run: str | Path, dest: str | Path, weights: str = "best",
                      tile_size: Sequence[int] | None = None, half: bool = True) -> Path:
    """Write a training run's best (or last-epoch) weights as a checkpoint file.

    Parameters
    ----------
    run : str or Path
        A training output folder (``best.pt``, and ``last.pt`` for ``weights="last"``).
    dest : str or Path
        The checkpoint to write.
    weights : {"best", "last"}
        The best validation epoch's weights or the last epoch's.
    tile_size : (z, y, x), optional
        Inference tile stored with the model (default: the run's).
    half : bool
        Store float16 weights (as the package ships them).
    """
    import torch

    from ..models import load, read_checkpoint, save_checkpoint

    run, dest = Path(run), Path(dest)
    payload = read_checkpoint(run / "best.pt")
    model = load(run / "best.pt")
    extra = payload.get("extra")
    if weights == "last":
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        extra = {"epoch": state["epoch"], "weights": "last epoch"}
    config = dict(payload["config"])
    if tile_size:
        config["tile_size"] = [int(v) for v in tile_size]
    return save_checkpoint(dest, model, config, extra=extra, half=half, overwrite=True)


def _train_stage(step: StagePlan) -> None:
    from .engine import train

    if step.stage.gpu:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"stage {step.stage.name} is a GPU stage and no GPU is "
                              "available", step.stage.path,
                              "run the recipe again on a GPU machine (finished stages are "
                              "kept), or pass --device cpu to train it on the CPU")
    if step.init is not None and step.init.name == "last_epoch.pt" and not step.init.is_file():
        export_checkpoint(step.init.parent, step.init, weights="last", half=False)
    from .._atomic import atomic_path

    t0 = time.time()
    best = train(step.config, resume=(step.out / "last.pt").is_file())
    with atomic_path(step.out / DONE, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"best": str(best), "init": str(step.init),
                                   "minutes": round((time.time() - t0) / 60, 2)}))


def run_recipe(recipe: Recipe | str | Path, out: str | Path, until: str | None = None,
               workers: int = 1, **overrides: Any) -> Path | None:
    """Simulate the data and train every stage of a recipe, then write the shipped file.

    Parameters
    ----------
    recipe : Recipe, str or Path
        A recipe or its name (``default``, ``segment-default``, ``cell-default``) or path.
    out : str or Path
        Output root: ``data/``, one folder per stage, and ``<model>.pt`` at the end.
    until : str, optional
        Stop after this stage.
    workers : int
        Processes simulating the data.
    **overrides
        ``device`` or ``num_threads`` for every stage.

    Returns
    -------
    Path or None
        ``<out>/<model>.pt`` (with its ``.sha256``), or ``None`` when stopped ``until``.
    """
    from ..models import write_sha256

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    root = Path(out)
    if until is not None and until not in [s.name for s in recipe.stages]:
        raise ConfigError(f"no stage {until!r} in recipe {recipe.model}", "--until")
    for step in plan(recipe, root, **overrides):
        if step.done:
            log.info("stage %s: done", step.stage.name)
        else:
            simulate_data_set(recipe, step.stage.data_set, root, workers)
            log.info("stage %s: training from %s", step.stage.name, step.init or "scratch")
            _train_stage(step)
        if step.stage.name == until:
            return None
    ship = recipe.ship
    dest = export_checkpoint(root / ship.stage, root / f"{recipe.model}.pt", ship.weights,
                             ship.tile_size, ship.half)
    write_sha256(dest, overwrite=True)
    if recipe.classifiers is not None:
        _build_classifiers(recipe, root, workers)
    return dest


def _build_classifiers(recipe: Recipe, root: Path, workers: int) -> None:
    """The default forests' training data, into ``<root>/segment_defaults``."""
    from .classifiers import build_default_classifiers

    spec = recipe.classifiers
    simulate_data_set(recipe, spec.data.split("/", 1)[0], root, workers)
    build_default_classifiers(root / "data" / spec.data, root / "segment_defaults",
                              spec.n_files, spec.per_class, spec.fl_model)
