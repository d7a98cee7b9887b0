"""The one place where the device is chosen and device-specific settings are decided.

The optimization code is the same on every device; only these settings differ:
- dtype of the convolutions: bfloat16 where it runs natively and pays (CUDA Ampere+; on a CPU with
  AVX512-BF16/AMX only if it measures clearly faster than float32 with the installed torch,
  measured once and remembered), float32 elsewhere. Not float16: with the Caffe weights' 0-255 input, VGG19's
  pre-ReLU activations reach ~2.4e4 on ordinary photos (measured), too close to float16's 65504
  for an optimizer that pushes contrast. Grams and losses always stay float32.
- channels-last memory layout where it speeds convolutions up.
- the default working size (longest side the coarse scales run at): 512 px on a CPU, 1024 px on
  a GPU; and how far `resolution: auto` goes above it (plans.py): to the layer's own size on a
  GPU, nowhere on a CPU: there a detail scale above the working size cost 2/3 of a default
  run's time on a 1024-px photo and added colour grain finer than the painting's strokes
  (benchmarks/bench_look.py: speckle 1.22 against 0.31 without it); `full` paints every pixel.
- memory: the largest block the VGG processes at once (objective.py) and the optimizer's
  history, from the memory free on the device.
"""
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from .errors import InputError
from ..user_dirs import cache_dir

CPU_WORKING_SIZE = 512
GPU_WORKING_SIZE = 1024
BF16_MARGIN = 1.3  # bf16 must be this much faster to be chosen: its results differ a little
CPU_DTYPE_FILE = "cpu-dtype.json"  # in user_dirs.cache_dir(): the measured verdict, per CPU and torch
# Peak bytes per input pixel of a VGG19 forward + backward to relu5_1, measured (benchmarks/
# bench_resolution.py): float32 on a CPU, bfloat16 activations on a GPU.
BLOCK_BYTES_PER_PIXEL = {torch.float32: 3000, torch.bfloat16: 1800}
BLOCK_SHARE = 0.25  # of the free memory, what a block's pass may use; and L-BFGS's history
# Caps on both: larger blocks only save halo work, and a 24-MP layer must fit a consumer GPU
# (measured on an H100: 5.8 GB at the GPU cap).
BLOCK_BYTES_MAX = {"cpu": 2 << 30, "gpu": 4 << 30}
OPTIMIZER_BYTES_MAX = 3 << 29
# glibc serves a request above its mmap threshold by mmap, and frees it straight to the system;
# by default it raises the threshold to 32 MB as big buffers come and go, so a block pass's
# 4-32-MB activations are then carved from its heap and, freed, stay there in fragments the next
# pass (the anchor's, the next iteration's) grows beside. At 4 MiB, measured on a 6-MP layer in
# 20 blocks: 0.7 GiB less at the peak, ~12 % more time per pass (fresh pages are zeroed). A level
# in one block (the default sizes) has no such peak and paid 13-29 % more time: only levels in
# blocks run so, and the threshold is then set where glibc's own settles.
MMAP_THRESHOLD = {"in blocks": 4 << 20, "after": 32 << 20}
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@dataclass(frozen=True)
class DeviceProfile:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    working_size: int
    detail_side: int | None  # how far `resolution: auto` goes; None: the layer's own size
    block_pixels: int        # the largest padded block one VGG pass may take
    optimizer_bytes: int     # what L-BFGS's history may hold
    # The presets' iterations are what float32 does in their wait on a CPU; bfloat16 there is
    # chosen only when at least BF16_MARGIN times faster, so it does that many times as many in
    # no longer a wait: a better picture, not a shorter one (`balanced`, 143 iterations against
    # 110 on the four photos of benchmarks/bench_look.py: content loss 3-5 % lower, style within
    # its own jitter, docs/benchmarks.md). 1 elsewhere: a GPU's bfloat16 is not measured.
    iteration_scale: float = 1.0


def free_memory(device: torch.device) -> int:
    """Bytes the device has free now: GPU memory, or the system's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def memory_plan(device: torch.device, dtype: torch.dtype) -> tuple[int, int]:
    """(block_pixels, optimizer_bytes) from the device's free memory."""
    share = int(free_memory(device) * BLOCK_SHARE)
    block_bytes = min(BLOCK_BYTES_MAX["cpu" if device.type == "cpu" else "gpu"], share)
    return block_bytes // BLOCK_BYTES_PER_PIXEL[dtype], min(OPTIMIZER_BYTES_MAX, share)


def select_device(name=None):
    """`name` ("cpu", "cuda", "cuda:1", "mps") or None for the best available: CUDA, MPS, CPU."""
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps requested but Apple MPS is not available")
    return device


def profile_for(device):
    """The device-specific settings for `device` (see the module docstring)."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return DeviceProfile(device, dtype, True, GPU_WORKING_SIZE, None,
                             *memory_plan(device, dtype))
    if device.type == "mps":
        return DeviceProfile(device, torch.float32, False, GPU_WORKING_SIZE, None,
                             *memory_plan(device, torch.float32))
    bf16 = cpu_bf16_pays()
    dtype = torch.bfloat16 if bf16 else torch.float32
    # Channels-last helps float32 convolutions on a CPU (~15 % here), not bfloat16 ones.
    return DeviceProfile(device, dtype, not bf16, CPU_WORKING_SIZE, CPU_WORKING_SIZE,
                         *memory_plan(device, dtype), iteration_scale=BF16_MARGIN if bf16 else 1.0)


@functools.cache
def cpu_bf16_pays() -> bool:
    """Whether bfloat16 convolutions run clearly faster than float32 on this CPU with the torch
    installed: measured (~0.7 s), not assumed — on this project's AVX512-BF16 machines VGG19
    forward + backward ran 2.3x faster in bf16 with torch 2.14.1 on one, 3.4x slower with torch
    2.15.0 on another, and 1.5x faster (idle) with 2.14.1 on a third — then remembered in
    CPU_DTYPE_FILE for this CPU and torch. Measured afresh in every process, a close call
    flipped with the load of the moment, and the same seed gave two results (bf16 and float32
    differ a little). Delete the file to measure again."""
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    path, key = cache_dir() / CPU_DTYPE_FILE, _cpu_key()
    try:
        remembered = json.loads(path.read_text())
        if remembered["key"] == key:
            return remembered["dtype"] == "bfloat16"
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: measure
    bf16, fp32 = _block_seconds(torch.bfloat16), _block_seconds(torch.float32)
    pays = bf16 * BF16_MARGIN < fp32
    _remember(path, {"key": key, "dtype": "bfloat16" if pays else "float32",
                     "bfloat16_s": bf16, "float32_s": fp32})
    return pays


def _cpu_key() -> str:
    """What the verdict depends on: the processor and the torch build."""
    return " | ".join((platform.machine(), _cpu_model(), torch.backends.cpu.get_cpu_capability(),
                       torch.__version__))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                        platform.processor())
    except OSError:
        return platform.processor()


def _remember(path: Path, verdict: dict[str, object]) -> None:
    """Write `verdict` whole or not at all (another process may read it at the same time); a
    folder that cannot be written costs only the next process's measurement."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(verdict))
        os.replace(temporary, path)
    except OSError:
        pass


def _block_seconds(dtype: torch.dtype) -> float:
    """Best of 4 forward + backward passes of VGG19's first layers at 128 px, in `dtype`."""
    block = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(64, 128, 3, padding=1),
        torch.nn.ReLU()).to(dtype)
    x = torch.randn(1, 3, 128, 128, dtype=dtype, requires_grad=True)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        block(x).float().sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def release_memory(device: torch.device) -> None:
    """Hand freed memory back to the system: the device's cache, and on Linux the C heap's free
    pages (glibc keeps freed tensors' pages otherwise, and the process never shrinks)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def freed_buffers_returned(active: bool = True) -> Iterator[None]:
    """While `active`: glibc hands every freed buffer of 4 MiB or more back to the system at
    once (MMAP_THRESHOLD, for levels in blocks); elsewhere than glibc, nothing changes."""
    libc = _glibc()
    if not active or libc is None or not hasattr(libc, "mallopt"):
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD["in blocks"])
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD["after"])


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    return ctypes.CDLL(name) if name else None
