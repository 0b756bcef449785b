"""Writing a volume as OME-Zarr: ri2fl's streaming writer against ome-zarr-py (and ngff-zarr).

Issue #29 item 10 asks whether a maintained library could replace ri2fl's hand-written
writer (``ri2fl.io.ome_zarr``) without losing the streaming or the speed. Every method
writes the same float32 volume (default 64 x 512 x 512, 64 MiB) as NGFF 0.5 / zarr v3 with
3 resolution levels (y, x halved per level, 2 x 2 mean), chunks of 32 x 256 x 256 and
Blosc-zstd level 5 with bit shuffle, each in a fresh process (time and peak RSS from
``VmHWM``; "above imports": the peak less the RSS after importing zarr,
dask, ri2fl and ome-zarr-py, the same in every process):

- ``ri2fl stream``: ``create_ome_zarr`` filled slab by slab (one chunk of z-planes made on
  the fly, as a producer hands over finished blocks); the volume is never whole in memory.
- ``ri2fl array``: ``write_ome_zarr`` of the volume held in memory.
- ``ome-zarr-py array``: ``ome_zarr.writer.write_image`` of the same array
  (``method=LOCAL_MEAN``, ``scale_factors=(2, 4)``).
- ``ome-zarr-py dask``: ``write_image`` of a lazy dask array whose blocks are made on the
  fly: ome-zarr-py's only route that does not hold the volume.
- ``ngff-zarr``: if installed (it is not a dependency: it pulls a WebAssembly runtime).

Times include making the data (the same random planes for every method). Level 0 of every
store is compared with the first one's.

Usage::

    python benchmarks/bench_ome_zarr_write.py                    # 64 x 512 x 512
    python benchmarks/bench_ome_zarr_write.py --shape 16 128 128 # quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOXEL = (0.2, 0.15, 0.15)
CHUNKS = (32, 256, 256)
SLAB = CHUNKS[0]
METHODS = ("ri2fl stream", "ri2fl array", "ome-zarr-py array", "ome-zarr-py dask", "ngff-zarr")


def slab(z0: int, z1: int, ny: int, nx: int) -> np.ndarray:
    """Planes ``z0:z1`` of the test volume: RI-like values, the same whoever asks."""
    rng = np.random.default_rng(z0)
    return (1.337 + 0.05 * rng.random((z1 - z0, ny, nx), dtype=np.float32)).astype(np.float32)


def volume(shape: tuple[int, int, int]) -> np.ndarray:
    """The whole test volume, assembled from its slabs."""
    nz, ny, nx = shape
    return np.concatenate([slab(z, min(z + SLAB, nz), ny, nx) for z in range(0, nz, SLAB)])


def _blosc():
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")


def write_ri2fl_stream(path: Path, shape: tuple[int, int, int]) -> None:
    from ri2fl.io import create_ome_zarr

    nz, ny, nx = shape
    with create_ome_zarr(path, shape, VOXEL, chunks=CHUNKS, levels=3) as out:
        for z in range(0, nz, SLAB):
            out[z:z + SLAB] = slab(z, min(z + SLAB, nz), ny, nx)


def write_ri2fl_array(path: Path, data: np.ndarray) -> None:
    from ri2fl.io import write_ome_zarr

    write_ome_zarr(path, data, VOXEL, chunks=CHUNKS, levels=3)


def _ome_zarr_py(path: Path, data) -> None:
    import zarr
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    group = zarr.open_group(path, mode="w", zarr_format=3)
    write_image(data, group, scale_factors=(2, 4), method=Methods.LOCAL_MEAN, axes="zyx",
                scale=dict(zip("zyx", VOXEL)),
                storage_options={"chunks": CHUNKS, "compressors": _blosc()})


def write_ome_zarr_py_dask(path: Path, shape: tuple[int, int, int]) -> None:
    import dask.array as da

    nz, ny, nx = shape
    planes = ((SLAB,) * (nz // SLAB) + ((nz % SLAB,) if nz % SLAB else ()), (ny,), (nx,))
    lazy = da.map_blocks(lambda block_info=None: slab(*block_info[None]["array-location"][0],
                                                      ny, nx),
                         chunks=planes, dtype=np.float32)
    _ome_zarr_py(path, lazy)


def write_ngff_zarr(path: Path, data: np.ndarray) -> None:
    import ngff_zarr as nz

    image = nz.to_ngff_image(data, dims=list("zyx"), scale=dict(zip("zyx", VOXEL)))
    multiscales = nz.to_multiscales(image, scale_factors=[2, 4], chunks=CHUNKS)
    nz.to_ngff_zarr(path, multiscales, version="0.5")


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` also keeps the peak of the parent process
    that spawned this one (the high-water mark survives ``exec``), which is the table's own.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, path: Path, shape: tuple[int, int, int]) -> dict:
    """Run one method in this process; return its time and memory (called in a subprocess)."""
    if method == "ngff-zarr":
        try:
            import ngff_zarr  # noqa: F401
        except ImportError:
            return {"skipped": "not installed (pulls wasmtime, itkwasm-downsample, zarrista)"}
    import dask.array  # noqa: F401  every method loads it; keep it out of the difference
    import zarr  # noqa: F401

    import ri2fl.io.ome_zarr  # noqa: F401

    with contextlib.suppress(ImportError):  # the same baseline for every method
        import ome_zarr.writer  # noqa: F401
    base = peak_rss_mb()
    in_memory = method.endswith("array") or method == "ngff-zarr"
    start = time.perf_counter()
    cpu = time.process_time()
    data = volume(shape) if in_memory else None  # timed: the streams make theirs on the fly
    if method == "ri2fl stream":
        write_ri2fl_stream(path, shape)
    elif method == "ri2fl array":
        write_ri2fl_array(path, data)
    elif method == "ome-zarr-py array":
        _ome_zarr_py(path, data)
    elif method == "ome-zarr-py dask":
        write_ome_zarr_py_dask(path, shape)
    else:
        write_ngff_zarr(path, data)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "peak_mb": peak,
            "above_imports_mb": peak - base}


def _level0(path: Path) -> np.ndarray:
    import zarr

    group = zarr.open_group(path, mode="r")
    return group[group.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]][...]


def _stored_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 512, 512))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    if args.child:
        print(json.dumps(child(args.child, args.out, shape)))
        return
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for i, method in enumerate(args.methods):
            out = Path(tmp) / f"m{i}.ome.zarr"
            run = subprocess.run([sys.executable, __file__, "--child", method, "--out", str(out),
                                  "--shape", *map(str, shape)],
                                 capture_output=True, text=True, check=True)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            if "skipped" not in result:
                level0 = _level0(out)
                first = level0 if first is None else first
                result["same_level0"] = bool(np.array_equal(level0, first))
                result["stored_mb"] = _stored_mb(out)
            rows.append((method, result))
    print(f"{'x'.join(map(str, shape))} float32, NGFF 0.5, 3 levels, chunks "
          f"{'x'.join(map(str, CHUNKS))}, Blosc-zstd 5")
    print("| method | wall s | CPU s | peak RSS (MB) | above imports (MB) | stored (MB) "
          "| level 0 = first |")
    print("|---|---|---|---|---|---|---|")
    for method, r in rows:
        if "skipped" in r:
            print(f"| {method} | {r['skipped']} | | | | | |")
            continue
        print(f"| {method} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['peak_mb']:.0f} "
              f"| {r['above_imports_mb']:.0f} | {r['stored_mb']:.1f} | {r['same_level0']} |")


if __name__ == "__main__":
    main()
