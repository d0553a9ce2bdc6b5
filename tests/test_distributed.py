"""Multi-process training: a converted model under DistributedDataParallel (gloo, 2 processes) ends with the same
parameters as one process training on the whole batch."""

import subprocess
import sys
import textwrap

import torch

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch.nn.parallel import DistributedDataParallel as DDP
    import torchconv

    def model():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(8, 4, 2, stride=2), torch.nn.Conv2d(4, 2, 1)).double()
        return torchconv.convert(net)

    def batch():
        g = torch.Generator().manual_seed(1)
        return torch.randn(6, 3, 10, 10, generator=g, dtype=torch.float64)

    def train(net, x, steps=3):
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        for _ in range(steps):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()

    def worker(rank, world, init_file, out):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=world)
        net = model()
        train(DDP(net), batch().chunk(world)[rank])  # DDP averages the gradients of equal shards
        if rank == 0:
            torch.save(net.state_dict(), out)
        dist.destroy_process_group()

    if __name__ == "__main__":
        init_file, out_ddp, out_one, out_init = sys.argv[1:]
        mp.spawn(worker, args=(2, init_file, out_ddp), nprocs=2, join=True)
        net = model()
        torch.save({k: v.clone() for k, v in net.state_dict().items()}, out_init)
        train(net, batch())
        torch.save(net.state_dict(), out_one)
""")


def test_ddp_matches_one_process(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    out_ddp, out_one, out_init = tmp_path / "ddp.pt", tmp_path / "one.pt", tmp_path / "init.pt"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "init"), str(out_ddp), str(out_one), str(out_init)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ddp, one, init = torch.load(out_ddp), torch.load(out_one), torch.load(out_init)
    assert ddp.keys() == one.keys() == init.keys() and len(ddp) == 8
    for k in one:
        assert (one[k] - init[k]).abs().max() > 1e-4, f"{k} did not train"
        torch.testing.assert_close(ddp[k], one[k], rtol=1e-10, atol=1e-12, msg=k)
