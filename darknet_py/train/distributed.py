"""-gpus 0,1,...: one process per device on torch.distributed (NCCL on CUDA, gloo on the
CPU). Each process trains its own batch; before every update the gradients accumulated in
that step are summed over the processes, and the update uses the total batch, so N
processes of batch B update as one process of batch N*B (Darknet's sync_nets averages
weights to the same effect)."""
import os

import numpy as np

from ..errors import DarknetError


class GradientSum:
    """Sum this step's gradients over the processes, keeping the momentum part local
    (it is identical everywhere)."""

    def __init__(self, dist):
        self.dist = dist

    @staticmethod
    def _flat(net):
        import torch
        backend = net.backend
        return backend.flat_updates if backend.name == "torch" else torch.from_numpy(net.updates)

    def snapshot(self, net):
        return self._flat(net).clone()

    def __call__(self, net, momentum_part):
        flat = self._flat(net)
        flat -= momentum_part
        self.dist.all_reduce(flat)
        flat += momentum_part


def _worker(rank, world, port, device_ids, nogpu, kwargs):
    import torch.distributed as dist
    from .trainer import train_detector
    use_cuda = not nogpu
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    try:
        device = f"cuda:{device_ids[rank]}" if use_cuda else "cpu"
        backend = ("torch", device)
        out = kwargs.pop("out", print) if rank == 0 else (lambda *a, **k: None)
        train_detector(backend=backend, rank=rank, world=world, reduce_gradients=GradientSum(dist),
                       out=out, **kwargs)
    finally:
        dist.destroy_process_group()


def train_distributed(device_ids, nogpu=False, **kwargs):
    """Run train_detector in one process per device id (``-gpus 0,1``)."""
    try:
        import torch.multiprocessing as mp
    except ImportError:
        raise DarknetError("-gpus needs PyTorch: pip install 'darknet_py[torch]'") from None
    world = len(device_ids)
    port = int(os.environ.get("DARKNET_PY_PORT", 29500 + os.getpid() % 1000))
    kwargs.pop("out", None)
    mp.spawn(_worker, args=(world, port, device_ids, nogpu, kwargs), nprocs=world, join=True)
