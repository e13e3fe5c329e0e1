"""-gpus 0,1,...: one process per device on torch.distributed (NCCL on CUDA, gloo on the
CPU); under torchrun, one process per device on every node (env:// rendezvous: RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Each process trains its own batch (its own
images: sample k of rank r is sample r*B + k of the whole batch); before every update the
gradients accumulated in that step are summed over the processes, and the update uses the
total batch, so N processes of batch B update as one process of batch N*B (Darknet's
sync_nets averages weights to the same effect). Only rank 0 writes weights and prints; at the
end the ranks check that they hold the same parameters."""
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


def check_ranks_agree(dist, net, device, world, out):
    """Every rank compares its parameters with rank 0's, bit for bit; a difference is an error.
    The tensors live on the rank's device (NCCL only moves CUDA tensors)."""
    import torch
    net.backend.sync_params(net)
    mine = torch.as_tensor(np.array(net.params, dtype=np.float32), device=device)
    theirs = mine.clone()
    dist.broadcast(theirs, src=0)
    agree = torch.tensor([int(torch.equal(mine, theirs))], device=device)
    dist.all_reduce(agree, op=dist.ReduceOp.MIN)
    if not agree.item():
        raise DarknetError(f"the {world} training processes ended with different parameters")
    out(f"All {world} ranks hold identical parameters")


def train_rank(dist, rank, world, device, precision, kwargs):
    """train_detector on one rank of an initialised process group, then the ranks' check."""
    from .trainer import train_detector
    out = kwargs.pop("out", print) if rank == 0 else (lambda *a, **k: None)
    net = train_detector(backend=("torch", device, precision), rank=rank, world=world,
                         reduce_gradients=GradientSum(dist), out=out, **kwargs)
    check_ranks_agree(dist, net, device, world, out)


def _worker(rank, world, port, device_ids, nogpu, precision, kwargs):
    import torch.distributed as dist
    use_cuda = not nogpu
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    try:
        train_rank(dist, rank, world, f"cuda:{device_ids[rank]}" if use_cuda else "cpu", precision, kwargs)
    finally:
        dist.destroy_process_group()


def launched_by_torchrun():
    """Whether torchrun (or another env:// launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def train_torchrun(nogpu=False, precision="fp32", **kwargs):
    """This process's rank of a torchrun job: NCCL on its node's GPU LOCAL_RANK, or gloo on the CPU."""
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise DarknetError("training under torchrun needs PyTorch: pip install 'darknet_py[torch]'") from None
    use_cuda = not nogpu and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if use_cuda else "cpu"
        train_rank(dist, rank, world, device, precision, kwargs)
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
