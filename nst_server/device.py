"""The one place where the device is chosen and device-specific settings are decided.

The optimization code is the same on every device; only these settings differ:
- dtype of the convolutions: bfloat16 where the hardware runs it natively (CUDA Ampere+, CPUs with
  AVX512-BF16/AMX), float32 elsewhere. Not float16: with the Caffe weights' 0-255 input, VGG19's
  pre-ReLU activations reach ~2.4e4 on ordinary photos (measured), too close to float16's 65504
  for an optimizer that pushes contrast. Grams and losses always stay float32.
- channels-last memory layout where it speeds convolutions up.
- the default working size (longest side the optimization runs at): what a default run finishes
  in well under a minute — 512 px on a CPU, 1024 px on a GPU.
"""
import ctypes
import ctypes.util
import gc
import sys
from dataclasses import dataclass

import torch

from .errors import InputError

CPU_WORKING_SIZE = 512
GPU_WORKING_SIZE = 1024


@dataclass(frozen=True)
class DeviceProfile:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    working_size: int


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
        return DeviceProfile(device, dtype, True, GPU_WORKING_SIZE)
    if device.type == "mps":
        return DeviceProfile(device, torch.float32, False, GPU_WORKING_SIZE)
    bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    # Measured here (AVX512-BF16, 2 cores): bf16 runs VGG19 2.3x faster than fp32; channels-last
    # helps fp32 (~15%) but not bf16.
    return DeviceProfile(device, torch.bfloat16 if bf16 else torch.float32, not bf16,
                         CPU_WORKING_SIZE)


def release_memory(device: torch.device) -> None:
    """Hand freed memory back to the system: the device's cache, and on Linux the C heap's free
    pages (glibc keeps freed tensors' pages otherwise, and the process never shrinks)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    libc = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if libc:
        ctypes.CDLL(libc).malloc_trim(0)
