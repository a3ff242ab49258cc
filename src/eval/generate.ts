/**
 * Text generation from a prompt: greedy or temperature / top-p sampling (seeded), with the KV
 * cache (src/models/kv-cache.ts: the prompt runs once, then one token per forward pass) or, for
 * checking, a full forward pass over the whole sequence at every step. Stops at EOS (not part of
 * the output), at a stop string (the text is cut before it; the ids keep the tokens that formed
 * it), or after maxNewTokens.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import { KvCache } from '../models/kv-cache.js';
import type { Router } from '../routers/router.js';
import { noGrad, Rng, Tensor, withScope } from '../tensor/index.js';
import { withRouter } from './router-choice.js';
import { RouterStatsAccumulator, type RouterStatsSummary } from '../routers/stats.js';
import { routingSummary } from './flop-dims.js';
import { checkSamplingOptions, sampleToken } from './sampling.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  /** Nucleus mass (default 1). */
  topP?: number;
  seed?: number;
  /** Stop strings (need `decode`). */
  stop?: string[];
  /** Token ids that end generation (default: the config's eos_token_id). */
  eosTokenIds?: number[];
  /** Text of generated ids (for stop strings and `text`). */
  decode?: (ids: number[]) => string;
  /** Decode with the KV cache (default true); false reruns the whole sequence each step. */
  useCache?: boolean;
  router?: Router;
  /** Sees each step's next-token logits (a copy) before a token is chosen. */
  onLogits?: (step: number, logits: Float32Array) => void;
  onToken?: (id: number) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateResult {
  /** New token ids (EOS excluded). */
  ids: number[];
  /** Decoded new text, cut before a stop string; null without `decode`. */
  text: string | null;
  finishReason: FinishReason;
  promptTokens: number;
  routerStats: RouterStatsSummary | null;
}

function eosIds(model: CausalLM): number[] {
  const e = model.config.eosTokenId;
  return e === null ? [] : Array.isArray(e) ? e : [e];
}

export function generate(model: CausalLM, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  const maxNew = opts.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`max new tokens must be an integer >= 0, got ${maxNew}`);
  if (prompt.length === 0) throw new Error('generate: the prompt has no tokens');
  const sampling = { temperature: opts.temperature ?? 0, topP: opts.topP ?? 1 };
  checkSamplingOptions(sampling);
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  if (stops.length > 0 && !opts.decode) throw new Error('generate: stop strings need a tokenizer to decode the output');
  const eos = new Set(opts.eosTokenIds ?? eosIds(model));
  const rng = new Rng(opts.seed ?? 0);
  const useCache = opts.useCache ?? true;
  const tally = new RouterStatsAccumulator();
  const V = model.config.vocabSize;

  return withRouter(model, opts.router, () => {
    for (const b of model.moeBlocks()) {
      if (!b.router.causal) throw new Error(`router '${b.router.spec.name}' is not causal (it looks at the whole batch), so it cannot generate token by token`);
    }
    const cfg = model.config;
    const cache = useCache ? new KvCache(cfg.numLayers, 1, cfg.numKvHeads, cfg.headDim) : null;
    const all = [...prompt];
    const out: number[] = [];
    let finish: FinishReason = 'length';
    let text: string | null = null;
    let pending: number[] = [...prompt];
    for (let step = 0; step < maxNew; step++) {
      const input = cache ? pending : all;
      let row: Float32Array = new Float32Array(0);
      withScope(() => noGrad(() => {
        const ctx = ForwardContext.eval();
        const logits = model.forward(new Tensor(Int32Array.from(input), [1, input.length]), { ctx, cache: cache ?? undefined });
        const off = (input.length - 1) * V;
        row = Float32Array.from(logits.f.subarray(off, off + V));
        tally.add(ctx.routing);
      }));
      opts.onLogits?.(step, row);
      const id = sampleToken(row, sampling, rng);
      if (eos.has(id)) {
        finish = 'eos';
        break;
      }
      out.push(id);
      all.push(id);
      pending = [id];
      opts.onToken?.(id);
      if (stops.length > 0) {
        const t = opts.decode!(out);
        const at = stops.map((s) => t.indexOf(s)).filter((i) => i >= 0);
        if (at.length > 0) {
          text = t.slice(0, Math.min(...at));
          finish = 'stop';
          break;
        }
      }
    }
    if (text === null && opts.decode) text = opts.decode(out);
    return { ids: out, text, finishReason: finish, promptTokens: prompt.length, routerStats: routingSummary(tally, model.config) };
  });
}
