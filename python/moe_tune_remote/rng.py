"""
moe-tune's seeded random stream (src/tensor/random.ts: xoshiro128** seeded through splitmix32), bit for
bit, so the random-drop router draws the same coin flips here as in moe-tune.
"""
from __future__ import annotations

M32 = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    return (a * b) & M32


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def _splitmix32(seed: int):
    x = seed & M32

    def nxt() -> int:
        nonlocal x
        x = (x + 0x9E3779B9) & M32
        z = x
        z = _imul(z ^ (z >> 16), 0x85EBCA6B)
        z = _imul(z ^ (z >> 13), 0xC2B2AE35)
        return (z ^ (z >> 16)) & M32

    return nxt


def layer_stream_seed(seed: int, layer: int) -> int:
    """The seed of a random-drop router's stream for one layer (src/routers/random-drop.ts)."""
    return (_imul(seed & M32, 0x9E3779B1) ^ _imul((layer + 1) & M32, 0x85EBCA6B)) & M32


class Rng:
    def __init__(self, seed: int):
        sm = _splitmix32(seed)
        self.s = [sm(), sm(), sm(), sm()]
        if all(v == 0 for v in self.s):
            self.s[0] = 1
        self.spare = None

    def next_u32(self) -> int:
        s = self.s
        result = _imul(_rotl(_imul(s[1], 5), 7), 9)
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def next(self) -> float:
        """Uniform in [0, 1) with 32 bits of randomness."""
        return self.next_u32() / 4294967296.0

    def state(self):
        return {"s": list(self.s), "spare": self.spare}

    @staticmethod
    def from_state(st) -> "Rng":
        r = Rng(0)
        r.s = [int(v) & M32 for v in st["s"]]
        r.spare = st.get("spare")
        return r
