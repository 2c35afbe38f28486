"""The reference model of bench/model.ts in PyTorch, timed as bench/model.ts times ours.

4 layers, d 256, 4 heads, dFF 1024, context 256, vocab 101, pre-LN, exact GELU, no linear biases,
tied head. Prints JSON lines: torch_sft_tokens_per_s (batch 16 x 256, AdamW), torch_sample_tokens_per_s
(batch 16, 16-token prompts, 240 new tokens, greedy, preallocated KV cache), _b256 (256 x 64 new
tokens), torch_kv_cache_speedup (batch 1, 255 new tokens, against recomputing the prefix); each with
attention written out (as ours) and with F.scaled_dot_product_attention ("sdpa": true).
Run by bench/torch-reference.sh.
"""
import json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

L, D, H, FF, T, V, BATCH = 4, 256, 4, 1024, 256, 101, 16


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.o = nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D, bias=False)
        self.w1, self.w2 = nn.Linear(D, FF, bias=False), nn.Linear(FF, D, bias=False)

    def attn(self, x, cache, pos, sdpa):
        B, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, t, 3, H, D // H).permute(2, 0, 3, 1, 4)
        if cache is not None:  # write this call's keys and values in place, attend to the prefix
            ck, cv = cache
            ck[:, :, pos:pos + t], cv[:, :, pos:pos + t] = k, v
            k, v = ck[:, :, :pos + t], cv[:, :, :pos + t]
        if sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        else:
            a = q @ k.transpose(-1, -2) / math.sqrt(D // H)
            if t > 1:
                a = a.masked_fill(torch.ones(t, k.shape[2], dtype=torch.bool).triu(k.shape[2] - t + 1), float('-inf'))
            y = a.softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, t, D))

    def forward(self, x, cache=None, pos=0, sdpa=False):
        x = x + self.attn(x, cache, pos, sdpa)
        return x + self.w2(F.gelu(self.w1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, D), nn.Embedding(T, D)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(D)

    def forward(self, idx, caches=None, pos=0, sdpa=False):
        x = self.wte(idx) + self.wpe(torch.arange(pos, pos + idx.shape[1]))
        for i, b in enumerate(self.h):
            x = b(x, caches[i] if caches else None, pos, sdpa)
        return self.lnf(x) @ self.wte.weight.T


def timed(f, warmup=True):
    if warmup:
        f()
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def emit(metric, value, **ctx):
    print(json.dumps({'metric': metric, 'value': value, 'torch': torch.__version__, 'threads': torch.get_num_threads(), **ctx}), flush=True)


@torch.inference_mode()
def generate(m, prompts, new, sdpa):
    B, P = prompts.shape
    caches = [(torch.zeros(B, H, T, D // H), torch.zeros(B, H, T, D // H)) for _ in range(L)]
    logits = m(prompts, caches, 0, sdpa)[:, -1]
    for pos in range(P, P + new):
        logits = m(logits.argmax(-1, keepdim=True), caches, pos, sdpa)[:, -1]
    return B * new


def main():
    torch.manual_seed(0)
    m = GPT()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4)
    x, y = torch.randint(5, V, (BATCH, T)), torch.randint(5, V, (BATCH, T))
    for sdpa in (False, True):
        def step():
            loss = F.cross_entropy(m(x, sdpa=sdpa).view(-1, V), y.view(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        emit('torch_sft_tokens_per_s', BATCH * T / timed(step), unit='tokens/s', sdpa=sdpa, batch=BATCH)
    for sdpa in (False, True):
        p16, p256, p1 = torch.randint(6, V, (BATCH, 16)), torch.randint(6, V, (256, 16)), torch.randint(6, V, (1, 1))
        emit('torch_sample_tokens_per_s', BATCH * 240 / timed(lambda: generate(m, p16, 240, sdpa)), unit='tokens/s', sdpa=sdpa, batch=BATCH)
        emit('torch_sample_tokens_per_s_b256', 256 * 64 / timed(lambda: generate(m, p256, 64, sdpa), False), unit='tokens/s', sdpa=sdpa, batch=256)
        cached = timed(lambda: generate(m, p1, T - 1, sdpa))

        @torch.inference_mode()
        def recompute():
            seq = p1
            while seq.shape[1] < T:
                seq = torch.cat([seq, m(seq, sdpa=sdpa)[:, -1:].argmax(-1)], 1)

        emit('torch_kv_cache_speedup', timed(recompute, False) / cached, unit='x', sdpa=sdpa, batch=1, cached_s=cached)


if __name__ == '__main__':
    main()
