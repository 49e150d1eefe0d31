"""Data-parallel training under torchrun: launcher detection, per-rank device, process group.

torchrun (``python -m torch.distributed.run``) starts one process per worker and sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in each
one's environment. Without these variables training runs as a single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

LAUNCHER_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class LaunchContext:
    """Position of this process among the workers that torchrun started."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch_context(environ: Mapping[str, str] | None = None) -> LaunchContext | None:
    """Read torchrun's variables from ``environ`` (default os.environ), or return None when none is set."""
    environ = os.environ if environ is None else environ
    present = [name for name in LAUNCHER_VARIABLES if name in environ]
    if not present:
        return None
    missing = [name for name in LAUNCHER_VARIABLES if name not in environ]
    if missing:
        raise ValueError(
            f"{', '.join(present)} set but {', '.join(missing)} missing; "
            "start distributed training with torchrun, or unset these variables for one process"
        )
    values = {}
    for name in LAUNCHER_VARIABLES:
        try:
            values[name] = int(environ[name])
        except ValueError as exc:
            raise ValueError(f"invalid {name}={environ[name]!r}: expected an integer") from exc
    world_size, rank, local_rank = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
    if world_size < 1:
        raise ValueError(f"invalid WORLD_SIZE={world_size}: expected 1 or more")
    if not 0 <= rank < world_size:
        raise ValueError(f"invalid RANK={rank}: expected 0 to {world_size - 1} for WORLD_SIZE={world_size}")
    if local_rank < 0:
        raise ValueError(f"invalid LOCAL_RANK={local_rank}: expected 0 or more")
    return LaunchContext(rank=rank, local_rank=local_rank, world_size=world_size)


def rank_device(name: str, context: LaunchContext) -> torch.device:
    """Pick this rank's device for ``--device name``: cuda:LOCAL_RANK for auto (with a GPU) or cuda, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ValueError(
            f"invalid --device {name!r} under torchrun: expected auto, cpu or cuda, "
            "because each rank uses cuda:LOCAL_RANK"
        )
    if not torch.cuda.is_available():
        raise ValueError("--device cuda requested, but torch sees no CUDA GPU; use --device cpu")
    if context.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"LOCAL_RANK={context.local_rank} has no GPU because torch sees only {torch.cuda.device_count()} GPUs; "
            "start at most that many processes per node"
        )
    return torch.device("cuda", context.local_rank)


@contextmanager
def process_group(context: LaunchContext, device: torch.device) -> Iterator[None]:
    """Join the process group (nccl for CUDA, gloo for CPU) and leave it on exit, also after an error."""
    # NOTE: the nccl path is untested here; the tests run only gloo on CPU.
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=context.rank, world_size=context.world_size)
    try:
        yield
        # Rank 0 still validates, fits the residual tables and saves after the last step. Leaving
        # together keeps a rank from tearing down gloo while rank 0 works, which can abort it.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def average_across_ranks(values: torch.Tensor, context: LaunchContext | None) -> torch.Tensor:
    """Return the mean of ``values`` over all ranks. A NaN or inf on any rank makes the mean non-finite."""
    if context is None:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size
