"""DistributedDataParallel through PyTorch's own stack: torchrun starts the processes, we only join.

    torchrun --nproc-per-node=2 -m core train ...                 (one machine, 2 GPUs or 2 CPU procs)
    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:29400 --rdzv-id=JOB -m core train ...   (on each machine)

Semantics: `batch_size` and `lr` are global. Each step's global batch (the same permutation on every
rank) is cut into equal contiguous shares, one per rank; DDP averages the gradients, so the update
equals one process training on the whole batch. When an epoch's last batch does not divide evenly,
its remainder (at most world_size - 1 images) is skipped. Rank 0 alone writes the run directory.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# A peer that vanished makes collectives fail after this long instead of hanging forever
# (torchrun normally tears the job down sooner when it sees a worker die).
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=45)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's equal, contiguous share of a global batch of indices."""
        if self.size == 1:
            return batch
        share = len(batch) // self.size
        return batch[self.rank * share:(self.rank + 1) * share]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar tensor over all ranks (a no-op alone)."""
        if self.size > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value = value / self.size
        return value

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is True on any (so all ranks stop at the same step)."""
        if self.size == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


SINGLE = World()


def join(device_request: str = "auto") -> World:
    """Join the process group torchrun set up (env:// rendezvous); a plain process is World(0, 1, 0)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = torch.cuda.is_available() and device_request in ("auto", "cuda") or device_request.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    """Each rank on its own GPU; CPU ranks share the CPU."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def leave(world: World, clean: bool) -> None:
    """Barrier then destroy on a clean finish; after a failure, destroy without waiting on peers."""
    if not world.distributed or not dist.is_initialized():
        return
    try:
        if clean:
            dist.barrier()
    finally:
        dist.destroy_process_group()
