"""-gpus 0,1,...: one process per device on torch.distributed (NCCL on CUDA, gloo on the
CPU). Each process trains its own batch; before every update the gradients accumulated in
that step are summed over the processes, and the update uses the total batch, so N
processes of batch B update as one process of batch N*B (Darknet's sync_nets averages
weights to the same effect)."""
import os
import socket

import numpy as np

from ..errors import DarknetError


def free_port():
    """A TCP port on the loopback that nothing listens on now, for the processes' rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GradientSum:
    """Sum this step's gradients over the processes, keeping the momentum part local
    (it is identical everywhere)."""

    def __init__(self, dist):
        self.dist = dist

    @staticmethod
    def _flat(net):
        import torch
        return torch.as_tensor(net.backend.gradient_buffer(net))

    def snapshot(self, net):
        return self._flat(net).clone()

    def __call__(self, net, momentum_part):
        flat = self._flat(net)
        flat -= momentum_part
        self.dist.all_reduce(flat)
        flat += momentum_part


def _worker(rank, world, port, device_ids, nogpu, precision, kwargs):
    import torch.distributed as dist

    from .trainer import train_detector
    use_cuda = not nogpu
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    try:
        device = f"cuda:{device_ids[rank]}" if use_cuda else "cpu"
        backend = ("torch", device, precision)
        out = kwargs.pop("out", print) if rank == 0 else (lambda *a, **k: None)
        train_detector(backend=backend, rank=rank, world=world, reduce_gradients=GradientSum(dist),
                       out=out, **kwargs)
    finally:
        dist.destroy_process_group()


def train_distributed(device_ids, nogpu=False, precision="fp32", **kwargs):
    """Run train_detector in one process per device id (``-gpus 0,1``)."""
    try:
        import torch.multiprocessing as mp
    except ImportError:
        raise DarknetError("-gpus needs PyTorch: pip install 'darknet_py[torch]'") from None
    world = len(device_ids)
    port = int(os.environ.get("DARKNET_PY_PORT") or free_port())
    kwargs.pop("out", None)
    mp.spawn(_worker, args=(world, port, device_ids, nogpu, precision, kwargs), nprocs=world, join=True)


def _fixed_batches_worker(rank, world, port, cfg, weights, x, truth, steps, out_dir):
    import torch.distributed as dist

    from ..network import Network
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        net = Network(cfg, backend="torch", device="cpu", weights=weights)
        net.world = world
        reduce = GradientSum(dist)
        share = x.shape[0] // world
        mine = slice(rank * share, (rank + 1) * share)
        losses = []
        for _ in range(steps):
            momentum_part = reduce.snapshot(net)
            losses.append(net.train_step(x[mine], truth[mine], log=lambda line: None,
                                         before_update=lambda n, s, part=momentum_part: reduce(n, part)))
        net.backend.sync_params(net)
        np.save(os.path.join(out_dir, f"rank{rank}.npy"), net.params)
        np.save(os.path.join(out_dir, f"losses{rank}.npy"), np.array(losses))
    finally:
        dist.destroy_process_group()


def train_fixed_batches(cfg, weights, x, truth, world, steps, out_dir, port=None):
    """Train ``steps`` steps on fixed batches in ``world`` gloo processes, each taking its
    share of ``x``; every rank writes its parameters to out_dir/rank{r}.npy. (How the
    tests prove that the processes stay identical and match one process.)"""
    import torch.multiprocessing as mp
    port = port or free_port()
    mp.spawn(_fixed_batches_worker, args=(world, port, str(cfg), str(weights), x, truth, steps, str(out_dir)),
             nprocs=world, join=True)
    return [np.load(os.path.join(out_dir, f"rank{r}.npy")) for r in range(world)]
