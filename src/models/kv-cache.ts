import { Tensor } from '../tensor/index.js';

/**
 * Keys and values of past positions for one attention layer, in persistent (unpooled) memory that
 * grows by doubling, so decoding one token at a time appends in place.
 */
export class LayerKvCache {
  private k: Float32Array = new Float32Array(0);
  private v: Float32Array = new Float32Array(0);
  private capacity = 0;
  length = 0;

  /**
   * kvHeads / headDim are what the config says; an attention that caches another shape (multi-head latent
   * attention caches every head at its own head size) sets them with its first append.
   */
  constructor(readonly batch: number, public kvHeads: number, public headDim: number) {}

  /** Appends k, v [B, T, Hkv, Dh] and returns the whole k, v [B, S, Hkv, Dh] (S = past + T). */
  append(k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const [B, T, Hkv, Dh] = k.shape as [number, number, number, number];
    if (B !== this.batch) throw new Error(`kv cache: batch ${B} differs from the cache's ${this.batch}`);
    if (this.capacity === 0) {
      this.kvHeads = Hkv;
      this.headDim = Dh;
    }
    if (Hkv !== this.kvHeads || Dh !== this.headDim || v.shape[2] !== Hkv || v.shape[3] !== Dh) {
      throw new Error(`kv cache: k [${k.shape.join(', ')}] / v [${v.shape.join(', ')}] do not match the cache's ${this.kvHeads} heads of ${this.headDim}`);
    }
    const row = this.kvHeads * this.headDim;
    const S = this.length + T;
    if (S > this.capacity) this.grow(Math.max(S, this.capacity * 2, 16));
    for (let b = 0; b < B; b++) {
      const dst = (b * this.capacity + this.length) * row;
      this.k.set(k.f.subarray(b * T * row, (b + 1) * T * row) as Float32Array, dst);
      this.v.set(v.f.subarray(b * T * row, (b + 1) * T * row) as Float32Array, dst);
    }
    this.length = S;
    return { k: this.view(this.k, S), v: this.view(this.v, S) };
  }

  private view(buf: Float32Array, S: number): Tensor {
    const row = this.kvHeads * this.headDim;
    if (this.batch === 1) return new Tensor(buf.subarray(0, S * row), [1, S, this.kvHeads, this.headDim]);
    const out = Tensor.empty([this.batch, S, this.kvHeads, this.headDim]);
    for (let b = 0; b < this.batch; b++) (out.f as Float32Array).set(buf.subarray(b * this.capacity * row, (b * this.capacity + S) * row), b * S * row);
    return out;
  }

  private grow(cap: number): void {
    const row = this.kvHeads * this.headDim;
    const nk = new Float32Array(this.batch * cap * row);
    const nv = new Float32Array(this.batch * cap * row);
    for (let b = 0; b < this.batch; b++) {
      nk.set(this.k.subarray(b * this.capacity * row, (b * this.capacity + this.length) * row), b * cap * row);
      nv.set(this.v.subarray(b * this.capacity * row, (b * this.capacity + this.length) * row), b * cap * row);
    }
    this.k = nk;
    this.v = nv;
    this.capacity = cap;
  }
}

/** One cache per decoder layer. */
export class KvCache {
  readonly layers: LayerKvCache[];

  constructor(numLayers: number, batch: number, kvHeads: number, headDim: number) {
    this.layers = Array.from({ length: numLayers }, () => new LayerKvCache(batch, kvHeads, headDim));
  }

  get length(): number {
    return this.layers[0]?.length ?? 0;
  }
}
