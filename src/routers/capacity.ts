/**
 * Expert capacity C = gamma * T / N (XMoE paper 001 eq. 3; expert choice, paper 002). The papers
 * leave the rounding open; moe-tune's choice: round up (as the XMoE authors' DeepSpeed gating
 * does), after forgiving float noise of a few ulps (1.1 * 100 / 10 is 11.000000000000002 in
 * floating point and gives 11, not 12), and never more than T (an expert cannot receive more
 * than T tokens, so a larger buffer would only be padding).
 */
export function expertCapacity(factor: number, numTokens: number, numExperts: number): number {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new Error(`capacity factor must be a positive number, got ${factor}`);
  const exact = (factor * numTokens) / numExperts;
  const c = Math.ceil(exact - 1e-9 * Math.max(1, exact));
  return Math.max(0, Math.min(numTokens, c));
}
