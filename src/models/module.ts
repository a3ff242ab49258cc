/**
 * A tree of modules whose parameter names are exactly the Hugging Face keys
 * (`model.layers.3.block_sparse_moe.gate.weight`), so load, save, LoRA targeting and PEFT export
 * are name lookups. Child modules are also plain fields named as in transformers (q_proj,
 * self_attn, ...), so model code reads like the PyTorch original.
 */
import type { Tensor } from '../tensor/index.js';

export abstract class Module {
  private readonly paramMap = new Map<string, Tensor>();
  private readonly childMap = new Map<string, Module>();

  /** Registers (or replaces) a parameter under a local name. */
  protected registerParam(name: string, t: Tensor): Tensor {
    this.paramMap.set(name, t);
    return t;
  }

  /** Registers a child module under a local name (also readable as a field of that name). */
  registerModule<M extends Module>(name: string, m: M): M {
    this.childMap.set(name, m);
    (this as unknown as Record<string, unknown>)[name] = m;
    return m;
  }

  /** Replaces (or removes with null) a parameter by local name. */
  setParam(name: string, t: Tensor | null): void {
    if (t === null) this.paramMap.delete(name);
    else this.paramMap.set(name, t);
    if (name in this) (this as unknown as Record<string, unknown>)[name] = t;
  }

  localParams(): ReadonlyMap<string, Tensor> {
    return this.paramMap;
  }

  children(): ReadonlyMap<string, Module> {
    return this.childMap;
  }

  /** [full name, parameter] pairs in a stable order (registration order, depth first). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.paramMap) out.push([prefix + n, t]);
    for (const [n, m] of this.childMap) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** [full path, module] pairs, this module first (path ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, m] of this.childMap) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** The module at a dotted path ('' is this module); throws naming the path when absent. */
  getModule(path: string): Module {
    if (path === '') return this;
    let cur: Module = this;
    for (const part of path.split('.')) {
      const next = cur.childMap.get(part);
      if (!next) throw new Error(`no module '${path}' (missing '${part}')`);
      cur = next;
    }
    return cur;
  }

  /** Replaces the module at a dotted path (e.g. wrapping a linear with LoRA). */
  setModule(path: string, m: Module): void {
    const i = path.lastIndexOf('.');
    const parent = i < 0 ? this : this.getModule(path.slice(0, i));
    const name = i < 0 ? path : path.slice(i + 1);
    if (!parent.childMap.has(name)) throw new Error(`no module '${path}' to replace`);
    parent.registerModule(name, m);
    parent.onChildReplaced(name, m);
  }

  /** Hook for containers that mirror children in another structure (ModuleList). */
  protected onChildReplaced(_name: string, _m: Module): void {}

  /**
   * Whether this module holds state that is not a parameter tensor (e.g. packed 4-bit weights) and
   * so cannot be saved by saveModel's state dict.
   */
  holdsNonParameterState(): boolean {
    return false;
  }

  /** All parameters (name -> tensor). */
  parameters(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }
}

/** An indexed list of modules (children named "0", "1", ...), like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    items.forEach((m) => this.push(m));
  }

  push(m: M): void {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new Error(`module list index ${i} out of range (${this.items.length})`);
    return m;
  }

  protected override onChildReplaced(name: string, m: Module): void {
    this.items[Number(name)] = m as M;
  }
}
