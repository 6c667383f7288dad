"""PyTorch reference for `ddpm bench`: the same DDPM UNet (same parameter count) and the same training step
(forward, L_simple, backward, global-norm clipping, Adam, EMA), printing the same JSON as `ddpm bench`.
Configurations an expert would try on a CPU: --precision bf16 (torch.autocast on the CPU, GroupNorm run in fp32
by hand because PyTorch 1.13's CPU GroupNorm refuses bf16 input with fp32 weights), --channels-last (NHWC
activations and weights), --compile (PyTorch >= 2).

Run with Debian's Python (python3-torch): /usr/bin/python3 bench/torch_reference.py --preset fmnist --mode train
For side-by-side comparisons only; nothing in the project imports it.
"""
import argparse, json, math, os, time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "cifar10": dict(image_size=32, channels=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn=(16,), dropout=0.1),
    "fmnist": dict(image_size=28, channels=1, ch=64, ch_mult=(1, 2, 2), num_res_blocks=2, attn=(14,), dropout=0.1),
    "fmnist-small": dict(image_size=28, channels=1, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn=(), dropout=0.0),
    "tiny": dict(image_size=28, channels=1, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn=(14,), dropout=0.0),
}


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in fp32 whatever the input dtype (the usual fix for CPU autocast in PyTorch 1.13)."""

    def forward(self, x):
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tch, dropout):
        super().__init__()
        self.norm1 = GroupNorm32(32, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(tch, cout)
        self.norm2 = GroupNorm32(32, cout, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = GroupNorm32(32, c, eps=1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(B, C, H * W).transpose(1, 2)
        k = self.k(h).reshape(B, C, H * W).transpose(1, 2)
        v = self.v(h).reshape(B, C, H * W).transpose(1, 2)
        w = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(C), dim=-1)
        o = torch.bmm(w, v).transpose(1, 2).reshape(B, C, H, W)
        return x + self.proj_out(o)


class UNet(nn.Module):
    def __init__(self, image_size, channels, ch, ch_mult, num_res_blocks, attn, dropout):
        super().__init__()
        tch = 4 * ch
        self.ch, self.nrb, self.L = ch, num_res_blocks, len(ch_mult)
        self.temb_dense0, self.temb_dense1 = nn.Linear(ch, tch), nn.Linear(tch, tch)
        self.conv_in = nn.Conv2d(channels, ch, 3, padding=1)
        res, cur, skips = image_size, ch, [ch]
        self.down = nn.ModuleList()
        for i, m in enumerate(ch_mult):
            lvl = nn.Module()
            lvl.block, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                lvl.block.append(ResBlock(cur, ch * m, tch, dropout))
                cur = ch * m
                if res in attn:
                    lvl.attn.append(AttnBlock(cur))
                skips.append(cur)
            lvl.downsample = None
            if i != self.L - 1:
                lvl.downsample = nn.Conv2d(cur, cur, 3, stride=2, padding=1)
                res //= 2
                skips.append(cur)
            self.down.append(lvl)
        self.mid_block_1 = ResBlock(cur, cur, tch, dropout)
        self.mid_attn_1 = AttnBlock(cur)
        self.mid_block_2 = ResBlock(cur, cur, tch, dropout)
        ups = [None] * self.L
        for i in reversed(range(self.L)):
            lvl = nn.Module()
            lvl.block, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                lvl.block.append(ResBlock(cur + skips.pop(), ch * ch_mult[i], tch, dropout))
                cur = ch * ch_mult[i]
                if res in attn:
                    lvl.attn.append(AttnBlock(cur))
            lvl.upsample = None
            if i != 0:
                lvl.upsample = nn.Conv2d(cur, cur, 3, padding=1)
                res *= 2
            ups[i] = lvl
        self.up = nn.ModuleList(ups)
        self.norm_out = GroupNorm32(32, cur, eps=1e-6)
        self.conv_out = nn.Conv2d(cur, channels, 3, padding=1)

    def forward(self, x, t):
        temb = self.temb_dense1(F.silu(self.temb_dense0(timestep_embedding(t, self.ch))))
        hs = [self.conv_in(x)]
        for lvl in self.down:
            for j, blk in enumerate(lvl.block):
                h = blk(hs[-1], temb)
                if len(lvl.attn):
                    h = lvl.attn[j](h)
                hs.append(h)
            if lvl.downsample is not None:
                hs.append(lvl.downsample(hs[-1]))
        h = self.mid_block_2(self.mid_attn_1(self.mid_block_1(hs[-1], temb)), temb)
        for i in reversed(range(self.L)):
            lvl = self.up[i]
            for j, blk in enumerate(lvl.block):
                h = blk(torch.cat([h, hs.pop()], 1), temb)
                if len(lvl.attn):
                    h = lvl.attn[j](h)
            if lvl.upsample is not None:
                h = lvl.upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="fmnist", choices=sorted(PRESETS))
    ap.add_argument("--mode", default="train", choices=["train", "sample"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch >= 2)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: torch.autocast mixed precision")
    ap.add_argument("--channels-last", action="store_true", help="NHWC activations and weights")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = PRESETS[a.preset]
    dev = torch.device(a.device)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = UNet(**cfg).to(dev, memory_format=fmt)
    ema = UNet(**cfg).to(dev, memory_format=fmt).eval().requires_grad_(False)
    ema.load_state_dict(net.state_dict())
    model = torch.compile(net) if a.compile else net
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    B, S, C = a.batch_size, cfg["image_size"], cfg["channels"]
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float().to(dev)
    x0 = (torch.rand(B, C, S, S, device=dev) * 2 - 1).contiguous(memory_format=fmt)
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def train_step():
        t = torch.randint(0, 1000, (B,), device=dev)
        eps = torch.randn_like(x0)
        a_t = ac[t].view(B, 1, 1, 1)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
        with autocast():
            out = model(x_t, t)
        loss = F.mse_loss(out.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - 0.9999)
        return loss

    def sample_step(x=torch.randn(B, C, S, S, device=dev).contiguous(memory_format=fmt),
                    t=torch.randint(0, 1000, (B,), device=dev)):
        with torch.no_grad(), autocast():
            return ema(x, t).float()

    step = train_step if a.mode == "train" else sample_step
    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    images = B * a.iters
    out = {"preset": a.preset, "mode": a.mode, "device": str(dev), "threads": a.threads, "batch_size": B,
           "iters": a.iters, "seconds": secs, "parameters": sum(p.numel() for p in net.parameters()),
           "torch_version": torch.__version__, "impl": "pytorch" + ("-compile" if a.compile else "-eager"),
           "precision": a.precision, "layout": "nhwc" if a.channels_last else "nchw"}
    out["images_per_sec" if a.mode == "train" else "image_nfe_per_sec"] = images / secs
    print(json.dumps(out))


if __name__ == "__main__":
    main()
