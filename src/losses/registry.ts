/**
 * The one list of auxiliary losses: `createAuxLoss({name, ...options})`, with one-line errors for
 * unknown names and keys, and `createWeightedAuxLoss` that pairs a loss with its weight schedule.
 */
import { ADAMOE_BALANCE_FORMS, ADAMOE_NULL_GROUPS, AdaMoeBalanceLoss, type AdaMoeBalanceForm, type AdaMoeNullGroup } from './adamoe-balance.js';
import type { AuxLoss, WeightedAuxLoss } from './aux-loss.js';
import { BALANCE_FORMS, BalanceLoss, type BalanceForm } from './balance.js';
import { EntropyLoss } from './entropy.js';
import { createSchedule, type ScheduleSpec } from './schedule.js';
import { TcMoeBalanceLoss } from './tcmoe-balance.js';
import { TcMoeRewardLoss } from './tcmoe-reward.js';
import { TopPBalanceLoss } from './topp-balance.js';
import { ZLoss } from './z-loss.js';

export interface AuxLossSpec {
  name: string;
  [key: string]: unknown;
}

export interface AuxLossEntry {
  name: string;
  summary: string;
  /** Option keys and what they take. */
  keys: Record<string, string>;
  create(opts: Record<string, unknown>): AuxLoss;
}

export const AUX_LOSSES: AuxLossEntry[] = [
  {
    name: 'balance',
    summary: 'Switch/Mixtral balance N * sum f_i P_i (all layers concatenated, per layer, or XMoE top-1)',
    keys: { form: BALANCE_FORMS.join(' | ') },
    create: (o) => new BalanceLoss((o['form'] as BalanceForm | undefined) ?? 'mixtral-all'),
  },
  {
    name: 'adamoe-balance',
    summary: 'AdaMoE balance, prefactor N + m (paper 004 eq. 6): null experts as one averaged group (the paper\'s prose, default) or each its own (null_group: separate, the authors\' code\'s effective loss)',
    keys: { form: ADAMOE_BALANCE_FORMS.join(' | '), nullGroup: ADAMOE_NULL_GROUPS.join(' | ') },
    create: (o) => new AdaMoeBalanceLoss((o['form'] as AdaMoeBalanceForm | undefined) ?? 'mixtral-all', (o['nullGroup'] as AdaMoeNullGroup | undefined) ?? 'averaged'),
  },
  {
    name: 'tcmoe-balance',
    summary: 'TC-MoE balance over ternary pairs (paper 000 eq. 6-9); T per sequence of sequenceLength tokens as the paper defines it, default: the whole batch',
    keys: { sequenceLength: 'positive integer T (default: the whole batch)' },
    create: (o) => new TcMoeBalanceLoss(o['sequenceLength'] as number | undefined),
  },
  { name: 'tcmoe-reward', summary: 'TC-MoE reward: minus the mean zero-expert gate (paper 000 eq. 12)', keys: {}, create: () => new TcMoeRewardLoss() },
  { name: 'entropy', summary: 'entropy of the router distribution (paper 003 Loss_d, eq. 5)', keys: {}, create: () => new EntropyLoss() },
  {
    name: 'topp-balance',
    summary: 'paper 003 balance over dynamic sets, per sequence of M tokens (eq. 6-8)',
    keys: { sequenceLength: 'positive integer M (default: the whole batch)' },
    create: (o) => new TopPBalanceLoss(o['sequenceLength'] as number | undefined),
  },
  { name: 'z-loss', summary: 'router z-loss: mean logsumexp(logits)^2 (ST-MoE)', keys: {}, create: () => new ZLoss() },
];

function usage(): string {
  return AUX_LOSSES.map((e) => (Object.keys(e.keys).length ? `${e.name}(${Object.keys(e.keys).join(', ')})` : e.name)).join(', ');
}

/** Creates an auxiliary loss; unknown names or keys are a one-line error listing what is valid. */
export function createAuxLoss(spec: AuxLossSpec): AuxLoss {
  const e = AUX_LOSSES.find((l) => l.name === spec?.name);
  if (!e) throw new Error(`unknown aux loss '${String(spec?.name)}' (valid: ${usage()})`);
  const opts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    if (k === 'name' || v === undefined) continue;
    if (!(k in e.keys)) {
      const valid = Object.entries(e.keys).map(([key, what]) => `${key}: ${what}`).join('; ') || 'none';
      throw new Error(`aux loss '${e.name}': unknown key '${k}' (valid keys: ${valid})`);
    }
    opts[k] = v;
  }
  return e.create(opts);
}

/** A loss with its weight: `weight` is a number (constant) or a schedule spec; default 1. */
export function createWeightedAuxLoss(spec: AuxLossSpec & { weight?: number | ScheduleSpec }): WeightedAuxLoss {
  const { weight, ...rest } = spec;
  return { loss: createAuxLoss(rest as AuxLossSpec), weight: createSchedule(weight ?? 1) };
}
